"use client";

import { Alert, Badge, Button, Card, Code, Group, Modal, NativeSelect, Radio, Stack, Switch, Text, Textarea, TextInput } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { IconAlertTriangle, IconLock, IconLockOpen, IconPlus, IconRefresh, IconTrash, IconUpload } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { z } from "zod";
import { customDomainName } from "../../server/input-schemas";
import type { Outputs } from "../api-types";
import { useCan } from "../auth/can";
import { ConfirmModal } from "../confirm-delete";
import { CopyableKey } from "../copy-button";
import { apiError } from "../errors";
import { apiSchemaResolver, useApiForm } from "../forms/use-api-form";
import { Section } from "../page-header";
import { formatAbsolute, RelativeTime } from "../relative-time";
import { useTRPC } from "../trpc";
import { useInvalidate } from "../use-invalidate";
import { DnsProviders, type DnsProvider } from "./dns-providers";
import { DialogFormFooter } from "../forms/dialog-form-footer";
import { ApiErrorAlert } from "../api-error-alert";

type Domain = Outputs["domains"]["list"][number];
type Method = Domain["method"];
type Challenge = Domain["challenge"];

/**
 * The Domains tab (issue 16, part 1): custom domains of the service, each with what its owner
 * publishes to verify it, the last check's reason, and its padlock: the certificate's state,
 * source and expiry, or why issuance failed.
 */
export function ServiceDomains({ serviceId }: { serviceId: string }) {
  const trpc = useTRPC();
  const canEdit = useCan("DEVELOPER");
  const domains = useQuery({
    ...trpc.domains.list.queryOptions({ serviceId }),
    // A certificate being issued becomes active within a minute: follow it without a reload.
    refetchInterval: (query) => (query.state.data?.some((domain) => domain.certificate.status === "ISSUING") ? 3_000 : false),
  });
  const providers = useQuery(trpc.dnsProviders.list.queryOptions({}));
  const [adding, addModal] = useDisclosure();

  return (
    <>
      <Section
        title="Custom domains"
        description="The router serves a domain once you prove it is yours, then over HTTPS with a certificate from Let's Encrypt (or your instance's ACME CA, or one you upload), renewed 30 days before it expires. The generated .localhost address stays plain HTTP."
        actions={
          canEdit ? (
            <Button size="xs" leftSection={<IconPlus size={14} />} onClick={addModal.open}>
              Add domain
            </Button>
          ) : null
        }
      >
        <ApiErrorAlert error={domains.error} />
        {domains.data?.length === 0 && (
          <Text c="dimmed" fz="sm" py="sm">
            No custom domains. {canEdit ? "Add one to serve this service on your own name." : ""}
          </Text>
        )}
        <Stack>
          {domains.data?.map((domain) => (
            <DomainCard key={domain.id} domain={domain} canEdit={canEdit} providers={providers.data ?? []} />
          ))}
        </Stack>
        {adding && <AddDomainModal serviceId={serviceId} providers={providers.data ?? []} onClose={addModal.close} />}
      </Section>
      <DnsProviders />
    </>
  );
}

/** The padlock: what a visitor's browser will see for this domain. */
function Padlock({ certificate }: { certificate: Domain["certificate"] }) {
  switch (certificate.status) {
    case "ACTIVE":
      return (
        <Badge color="green" variant="light" leftSection={<IconLock size={12} aria-hidden />}>
          HTTPS active
        </Badge>
      );
    case "ISSUING":
      return (
        <Badge color="blue" variant="light" leftSection={<IconLockOpen size={12} aria-hidden />}>
          Certificate being issued
        </Badge>
      );
    case "FAILED":
      return (
        <Badge color="red" variant="light" leftSection={<IconAlertTriangle size={12} aria-hidden />}>
          Certificate failed
        </Badge>
      );
    case "EXPIRED":
      return (
        <Badge color="red" variant="light" leftSection={<IconLockOpen size={12} aria-hidden />}>
          Certificate expired
        </Badge>
      );
    case "REFUSED":
      return (
        <Badge color="red" variant="light" leftSection={<IconAlertTriangle size={12} aria-hidden />}>
          Not served
        </Badge>
      );
    case "AWAITING_VERIFICATION":
      return (
        <Badge color="gray" variant="light" leftSection={<IconLockOpen size={12} aria-hidden />}>
          No certificate until verified
        </Badge>
      );
  }
}

/** The provider of the organization whose zone holds `hostname` (the apex or a name under it). */
function providersFor(providers: DnsProvider[], hostname: string) {
  return providers.filter((provider) => hostname === provider.zone || hostname.endsWith(`.${provider.zone}`));
}

/** The challenge choices of a domain: HTTP-01, or DNS-01 through each provider whose zone holds it; values "HTTP_01" or a provider's id. */
function challengeOptions(providers: DnsProvider[], hostname: string) {
  return [
    { value: "HTTP_01", label: "HTTP-01, through this cluster's router" },
    ...providersFor(providers, hostname).map((provider) => ({ value: provider.id, label: `DNS-01, through ${provider.name} (${provider.zone})` })),
  ];
}

const challengeInput = (value: string) => (value === "HTTP_01" ? { challenge: "HTTP_01" as const } : { challenge: "DNS_01" as const, dnsProviderId: value });
const challengeValue = (challenge: Challenge) => (challenge.type === "DNS_01" ? challenge.dnsProviderId! : "HTTP_01");

function DomainCard({ domain, canEdit, providers }: { domain: Domain; canEdit: boolean; providers: DnsProvider[] }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [removing, setRemoving] = useState(false);
  const [uploading, uploadModal] = useDisclosure();
  const verify = useMutation(
    trpc.domains.verify.mutationOptions({
      onSuccess: async (checked) => {
        notifications.show(
          checked.verified
            ? { color: "green", message: `${checked.hostname} is verified` }
            : { color: "orange", message: `${checked.hostname} is not verified yet` },
        );
        await invalidate();
      },
    }),
  );
  const renew = useMutation(
    trpc.domains.renewCertificate.mutationOptions({
      onSuccess: async () => {
        notifications.show({ color: "green", message: `A new certificate for ${domain.hostname} is being issued` });
        await invalidate();
      },
    }),
  );
  const update = useMutation(trpc.domains.update.mutationOptions({ onSuccess: invalidate }));
  const remove = useMutation(trpc.domains.remove.mutationOptions({ onSuccess: invalidate }));
  const { certificate } = domain;
  const failure = verify.error ?? renew.error ?? update.error;

  return (
    <Card withBorder padding="md" component="article" aria-label={domain.hostname}>
      <Stack gap="sm">
        <Group justify="space-between" wrap="wrap" gap="xs">
          <Group gap="xs" wrap="wrap">
            <Text fw={600} ff="monospace" className="break-anywhere">
              {domain.hostname}
            </Text>
            {domain.refused ? (
              <Badge color="red" variant="outline">
                Refused
              </Badge>
            ) : domain.verified ? (
              <Badge color="green" variant="outline">
                Verified
              </Badge>
            ) : (
              <Badge color="orange" variant="outline">
                Awaiting verification
              </Badge>
            )}
            <Padlock certificate={certificate} />
          </Group>
          {canEdit && (
            <Group gap="xs">
              {!domain.verified && !domain.refused && (
                <Button size="xs" onClick={() => verify.mutate({ domainId: domain.id })} loading={verify.isPending}>
                  Verify now
                </Button>
              )}
              {domain.verified && !domain.refused && (
                <>
                  <Button
                    size="xs"
                    variant="default"
                    leftSection={<IconRefresh size={14} />}
                    onClick={() => renew.mutate({ domainId: domain.id })}
                    loading={renew.isPending}
                  >
                    Renew certificate
                  </Button>
                  <Button size="xs" variant="default" leftSection={<IconUpload size={14} />} onClick={uploadModal.open}>
                    Upload certificate
                  </Button>
                </>
              )}
              <Button size="xs" variant="subtle" color="red" leftSection={<IconTrash size={14} />} onClick={() => setRemoving(true)}>
                Remove
              </Button>
            </Group>
          )}
        </Group>

        {domain.refused && (
          <Alert color="red" role="alert" title="Refused: not served">
            <Text fz="sm" className="break-anywhere">
              {domain.refused}
            </Text>
          </Alert>
        )}
        {!domain.verified && !domain.refused && <VerificationSteps domain={domain} />}
        {!domain.verified && domain.checkError && (
          <Alert color="orange" title={<>Last check {domain.lastCheckedAt && <RelativeTime value={domain.lastCheckedAt} />}</>}>
            {domain.checkError}
          </Alert>
        )}
        {domain.verified && (
          <Text fz="sm">
            {certificate.status === "ACTIVE" && certificate.notAfter && (
              <>
                {certificate.source === "UPLOADED" ? "Your uploaded certificate" : "Automatic certificate (ACME)"}, valid until{" "}
                {formatAbsolute(certificate.notAfter)}
                {certificate.source === "ACME" ? "; renewed automatically 30 days before." : "; replace it before then."}
              </>
            )}
            {certificate.status === "ISSUING" && "Served over HTTP while the certificate is being issued (usually under a minute)."}
            {certificate.status === "FAILED" && "Served over HTTP only: the certificate could not be issued."}
          </Text>
        )}
        {certificate.error && (
          <Alert color="red" role="alert" title={<>Certificate error {certificate.errorAt && <RelativeTime value={certificate.errorAt} />}</>}>
            <Text fz="sm" className="break-anywhere">
              {certificate.error}
            </Text>
          </Alert>
        )}
        <NativeSelect
          label="ACME challenge"
          description={
            domain.challenge.type === "DNS_01"
              ? `The certificate authority checks the TXT record _acme-challenge.${domain.hostname}, which Slipway publishes through the DNS provider and removes afterwards.`
              : "The certificate authority fetches a token from this cluster's router on port 80: the domain must point here."
          }
          data={challengeOptions(providers, domain.hostname)}
          value={challengeValue(domain.challenge)}
          disabled={!canEdit || update.isPending}
          onChange={(event) => update.mutate({ domainId: domain.id, ...challengeInput(event.currentTarget.value) })}
          maw={480}
        />
        {domain.verified && (
          <Switch
            label="Redirect HTTP to HTTPS"
            description="Once the domain has a certificate, plain HTTP requests are sent to HTTPS."
            checked={domain.redirectHttps}
            disabled={!canEdit || update.isPending}
            onChange={(event) => update.mutate({ domainId: domain.id, redirectHttps: event.currentTarget.checked })}
          />
        )}
        {failure && (
          <Alert color="red" role="alert">
            {apiError(failure).message}
          </Alert>
        )}
      </Stack>
      {uploading && <UploadCertificateModal domain={domain} onClose={uploadModal.close} />}
      <ConfirmModal
        opened={removing}
        onClose={() => setRemoving(false)}
        title="Remove domain"
        confirmLabel="Remove domain"
        onConfirm={() => remove.mutateAsync({ domainId: domain.id })}
      >
        Remove <strong>{domain.hostname}</strong>? The router stops serving it at once, and its certificate is deleted.
      </ConfirmModal>
    </Card>
  );
}

/** What the owner publishes, and how Slipway checks it. */
function VerificationSteps({ domain }: { domain: Domain }) {
  if (domain.txtRecord)
    return (
      <Stack gap={4}>
        <Text fz="sm">Add this TXT record at your DNS provider, then press Verify now. Slipway looks it up; the record may take a few minutes to appear.</Text>
        <Group gap="xs" wrap="wrap">
          <Text fz="sm" c="dimmed" w={48}>
            Name
          </Text>
          <CopyableKey value={domain.txtRecord.name} />
        </Group>
        <Group gap="xs" wrap="wrap">
          <Text fz="sm" c="dimmed" w={48}>
            Value
          </Text>
          <CopyableKey value={domain.txtRecord.value} />
        </Group>
        <Text fz="sm">Point the domain at this cluster&apos;s router too (an A or CNAME record), so that it is served once verified.</Text>
      </Stack>
    );
  if (domain.httpToken)
    return (
      <Stack gap={4}>
        <Text fz="sm">
          Point <Code>{domain.hostname}</Code> at this cluster&apos;s router (an A or CNAME record), then press Verify now. The router answers the address below
          with the token, and Slipway fetches it over HTTP (port 80) to check that the domain reaches this cluster.
        </Text>
        <CopyableKey value={domain.httpToken.url} />
      </Stack>
    );
  return null;
}

const METHODS: { value: Method; label: string; description: string }[] = [
  { value: "DNS_TXT", label: "DNS TXT record", description: "Publish a TXT record we give you. Works before the domain points here." },
  {
    value: "HTTP_TOKEN",
    label: "HTTP token",
    description: "Point the domain at this cluster's router first; Slipway fetches a token the router serves on it.",
  },
];

type AddValues = { hostname: string; method: Method; challenge: string };
const ADD_PATHS = [["hostname", "hostname"]] as const;
const addSchema = z.object({ hostname: customDomainName });

function AddDomainModal({ serviceId, providers, onClose }: { serviceId: string; providers: DnsProvider[]; onClose: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const add = useMutation(
    trpc.domains.add.mutationOptions({
      onSuccess: async (added) => {
        notifications.show({ color: "green", message: `${added.hostname} added: verify it to have it served` });
        await invalidate();
        onClose();
      },
    }),
  );
  const failure = add.error ? apiError(add.error) : null;
  const { form, input, unmatchedServerError } = useApiForm<AddValues, "hostname">({
    initialValues: { hostname: "", method: "DNS_TXT", challenge: "HTTP_01" },
    validate: apiSchemaResolver(addSchema, (values: AddValues) => ({ hostname: values.hostname }), ADD_PATHS),
    paths: ADD_PATHS,
    failure,
  });
  const hostname = form.values.hostname.trim().toLowerCase().replace(/\.$/, "");
  return (
    <Modal opened onClose={onClose} title="Add domain" centered>
      <form onSubmit={form.onSubmit(({ challenge, ...values }) => add.mutate({ serviceId, ...values, ...challengeInput(challenge) }))} noValidate>
        <Stack>
          <TextInput label="Domain" placeholder="www.example.com" {...input("hostname")} required data-autofocus autoComplete="off" />
          <Radio.Group label="Prove it is yours with" {...form.getInputProps("method")}>
            <Stack gap="xs" mt={6}>
              {METHODS.map((method) => (
                <Radio key={method.value} value={method.value} label={method.label} description={method.description} />
              ))}
            </Stack>
          </Radio.Group>
          <NativeSelect
            label="Certificate by"
            description={
              providersFor(providers, hostname).length === 0
                ? "DNS-01 needs a DNS provider whose zone holds this domain (DNS providers, below)."
                : "DNS-01 works for names the certificate authority cannot reach over HTTP."
            }
            data={challengeOptions(providers, hostname)}
            {...form.getInputProps("challenge")}
          />
          <DialogFormFooter error={failure && unmatchedServerError && failure.message} onCancel={onClose} submit="Add domain" pending={add.isPending} />
        </Stack>
      </form>
    </Modal>
  );
}

function UploadCertificateModal({ domain, onClose }: { domain: Domain; onClose: () => void }) {
  const trpc = useTRPC();
  const invalidate = useInvalidate();
  const [certificatePem, setCertificate] = useState("");
  const [privateKeyPem, setKey] = useState("");
  const upload = useMutation(
    trpc.domains.uploadCertificate.mutationOptions({
      onSuccess: async () => {
        notifications.show({ color: "green", message: `${domain.hostname} now uses your certificate` });
        await invalidate();
        onClose();
      },
    }),
  );
  const mono = { input: { fontFamily: "var(--mantine-font-family-monospace)" } };
  return (
    <Modal opened onClose={onClose} title={`Upload a certificate for ${domain.hostname}`} centered size="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          upload.mutate({ domainId: domain.id, certificatePem, privateKeyPem });
        }}
      >
        <Stack>
          <Textarea
            label="Certificate (PEM)"
            description="The domain's certificate first, then its intermediate certificates."
            placeholder="-----BEGIN CERTIFICATE-----"
            value={certificatePem}
            onChange={(event) => setCertificate(event.currentTarget.value)}
            autosize
            minRows={4}
            maxRows={10}
            styles={mono}
            required
          />
          <Textarea
            label="Private key (PEM)"
            description="Stored encrypted; only this cluster's engine receives it. It is never shown again."
            placeholder="-----BEGIN PRIVATE KEY-----"
            value={privateKeyPem}
            onChange={(event) => setKey(event.currentTarget.value)}
            autosize
            minRows={4}
            maxRows={10}
            styles={mono}
            autoComplete="off"
            required
          />
          <DialogFormFooter
            error={upload.error && apiError(upload.error).message}
            onCancel={onClose}
            submit="Use this certificate"
            pending={upload.isPending}
          />
        </Stack>
      </form>
    </Modal>
  );
}

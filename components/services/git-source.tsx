import { NativeSelect, SimpleGrid, TextInput } from "@mantine/core";
import type { GetInputPropsReturnType } from "@mantine/form";
import type { ApplicationConfig } from "../../engine/protocol/snapshot";

/**
 * The git source of the services built from a repository (applications and jobs), as their
 * forms edit it: values as typed, the conversions to and from the API's `git` object (which the
 * protocol's schema checks), the input paths of its fields and the fields themselves.
 */
export type GitSourceValues = { gitUrl: string; refKind: "branch" | "commit"; ref: string; rootDirectory: string };
export type GitSourceField = keyof GitSourceValues;

/** An empty branch is the repository's default branch (engine/protocol/snapshot.ts `ref`). */
export const emptyGitSource: GitSourceValues = { gitUrl: "", refKind: "branch", ref: "", rootDirectory: "" };

export function gitSourceValues(git: ApplicationConfig["git"]): GitSourceValues {
  const { ref } = git;
  return {
    gitUrl: git.url,
    refKind: ref && "commit" in ref ? "commit" : "branch",
    ref: !ref ? "" : "commit" in ref ? ref.commit : ref.branch,
    rootDirectory: git.rootDirectory ?? "",
  };
}

export function gitSourceConfig(values: GitSourceValues): ApplicationConfig["git"] {
  const ref = values.ref.trim();
  return {
    url: values.gitUrl.trim(),
    ...(values.refKind === "commit" ? { ref: { commit: ref } } : ref !== "" ? { ref: { branch: ref } } : {}),
    rootDirectory: values.rootDirectory.trim(),
  };
}

/** Input paths (as in the schema's and the server's issues) to the fields. */
export const GIT_SOURCE_SERVER_PATHS: [string, GitSourceField][] = [
  ["config.git.url", "gitUrl"],
  ["config.git.ref", "ref"],
  ["config.git.rootDirectory", "rootDirectory"],
];

type FieldProps = GetInputPropsReturnType & { readOnly?: boolean };

export function GitSourceFields(props: {
  input: (field: GitSourceField) => FieldProps;
  refKind: GitSourceValues["refKind"];
  readOnly?: boolean;
  /** "Deploy from" or "Build from". */
  refLabel: string;
  rootDescription: string;
  rootPlaceholder: string;
}) {
  const { input, refKind } = props;
  return (
    <>
      <TextInput
        label="Git URL"
        description="http(s), ssh, git or file URL of the repository; checked when saved."
        placeholder="https://github.com/you/app.git"
        required
        {...input("gitUrl")}
      />
      <SimpleGrid cols={{ base: 1, sm: 3 }}>
        <NativeSelect
          label={props.refLabel}
          data={[
            { value: "branch", label: "A branch" },
            { value: "commit", label: "A commit" },
          ]}
          {...input("refKind")}
          disabled={props.readOnly}
        />
        <TextInput
          label={refKind === "commit" ? "Commit" : "Branch"}
          placeholder={refKind === "commit" ? "a1b2c3d" : "default branch"}
          required={refKind === "commit"}
          {...input("ref")}
          style={{ gridColumn: "span 2" }}
        />
      </SimpleGrid>
      <TextInput label="Root directory" description={props.rootDescription} placeholder={props.rootPlaceholder} {...input("rootDirectory")} />
    </>
  );
}

/** The name field of a service form (create only): a DNS label, part of the service's address. */
export function ServiceNameField(props: FieldProps & { placeholder: string; description?: string }) {
  const { placeholder, description = "Lowercase letters, digits and inner hyphens, at most 40.", ...field } = props;
  return <TextInput label="Service name" description={description} placeholder={placeholder} maxLength={40} required data-autofocus {...field} />;
}

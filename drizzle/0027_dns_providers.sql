CREATE TYPE "public"."acme_challenge_type" AS ENUM('HTTP_01', 'DNS_01');--> statement-breakpoint
CREATE TYPE "public"."dns_provider_kind" AS ENUM('POWERDNS');--> statement-breakpoint
CREATE TABLE "dns_providers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"name" text NOT NULL,
	"kind" "dns_provider_kind" NOT NULL,
	"zone" text NOT NULL,
	"settings" jsonb NOT NULL,
	"encrypted_token" text NOT NULL,
	"token_hint" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "service_domains" ADD COLUMN "acme_challenge_type" "acme_challenge_type" DEFAULT 'HTTP_01' NOT NULL;--> statement-breakpoint
ALTER TABLE "service_domains" ADD COLUMN "dns_provider_id" uuid;--> statement-breakpoint
ALTER TABLE "dns_providers" ADD CONSTRAINT "dns_providers_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dns_providers_org_name_key" ON "dns_providers" USING btree ("organization_id","name");--> statement-breakpoint
ALTER TABLE "service_domains" ADD CONSTRAINT "service_domains_dns_provider_id_dns_providers_id_fk" FOREIGN KEY ("dns_provider_id") REFERENCES "public"."dns_providers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_domains" ADD CONSTRAINT "service_domains_dns_01_provider_check" CHECK ("service_domains"."acme_challenge_type" = 'HTTP_01' or "service_domains"."dns_provider_id" is not null);
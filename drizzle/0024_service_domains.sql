CREATE TYPE "public"."certificate_source" AS ENUM('ACME', 'UPLOADED');--> statement-breakpoint
CREATE TYPE "public"."domain_verification_method" AS ENUM('DNS_TXT', 'HTTP_TOKEN');--> statement-breakpoint
CREATE TABLE "acme_accounts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"directory_url" text NOT NULL,
	"encrypted_account_key" text NOT NULL,
	"account_url" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "service_domains" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"service_id" uuid NOT NULL,
	"hostname" text NOT NULL,
	"verification_method" "domain_verification_method" NOT NULL,
	"verification_token" text NOT NULL,
	"verified_at" timestamp with time zone,
	"last_checked_at" timestamp with time zone,
	"check_error" text,
	"redirect_https" boolean DEFAULT true NOT NULL,
	"certificate_source" "certificate_source",
	"certificate_pem" text,
	"encrypted_private_key" text,
	"certificate_not_after" timestamp with time zone,
	"certificate_error" text,
	"certificate_error_at" timestamp with time zone,
	"acme_challenge" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "acme_accounts" ADD CONSTRAINT "acme_accounts_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_domains" ADD CONSTRAINT "service_domains_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_domains" ADD CONSTRAINT "service_domains_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "acme_accounts_org_directory_key" ON "acme_accounts" USING btree ("organization_id","directory_url");--> statement-breakpoint
CREATE UNIQUE INDEX "service_domains_service_hostname_key" ON "service_domains" USING btree ("service_id","hostname");--> statement-breakpoint
CREATE UNIQUE INDEX "service_domains_verified_hostname_key" ON "service_domains" USING btree ("hostname") WHERE "service_domains"."verified_at" is not null;--> statement-breakpoint
CREATE INDEX "service_domains_org_idx" ON "service_domains" USING btree ("organization_id");
CREATE TYPE "public"."webhook_delivery_status" AS ENUM('PENDING', 'PROCESSED', 'IGNORED', 'FAILED');--> statement-breakpoint
CREATE TYPE "public"."git_provider" AS ENUM('github', 'gitlab', 'bitbucket', 'generic');--> statement-breakpoint
CREATE TABLE "git_connections" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"provider" "git_provider" NOT NULL,
	"name" text NOT NULL,
	"api_base_url" text,
	"encrypted_secret" text NOT NULL,
	"encrypted_api_token" text,
	"rejected_deliveries" integer DEFAULT 0 NOT NULL,
	"last_rejected_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "git_previews" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"connection_id" uuid,
	"blueprint_environment_id" uuid NOT NULL,
	"environment_id" uuid NOT NULL,
	"repository" text NOT NULL,
	"provider_repository" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"number" integer NOT NULL,
	"head_branch" text NOT NULL,
	"head_commit" text NOT NULL,
	"comment_id" text,
	"closed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigserial NOT NULL,
	"organization_id" uuid NOT NULL,
	"connection_id" uuid NOT NULL,
	"delivery_id" text NOT NULL,
	"event" text NOT NULL,
	"repository" text,
	"headers" jsonb NOT NULL,
	"payload" text NOT NULL,
	"status" "webhook_delivery_status" DEFAULT 'PENDING' NOT NULL,
	"outcome" jsonb,
	"error" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "preview_blueprint" jsonb;--> statement-breakpoint
ALTER TABLE "services" ADD COLUMN "git_triggers" jsonb;--> statement-breakpoint
ALTER TABLE "git_connections" ADD CONSTRAINT "git_connections_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "git_previews" ADD CONSTRAINT "git_previews_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "git_previews" ADD CONSTRAINT "git_previews_connection_id_git_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "public"."git_connections"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "git_previews" ADD CONSTRAINT "git_previews_blueprint_environment_id_environments_id_fk" FOREIGN KEY ("blueprint_environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "git_previews" ADD CONSTRAINT "git_previews_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_connection_id_git_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "public"."git_connections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "git_connections_org_name_key" ON "git_connections" USING btree ("organization_id","name");--> statement-breakpoint
CREATE INDEX "git_connections_org_idx" ON "git_connections" USING btree ("organization_id");--> statement-breakpoint
CREATE UNIQUE INDEX "git_previews_environment_key" ON "git_previews" USING btree ("environment_id");--> statement-breakpoint
CREATE UNIQUE INDEX "git_previews_open_key" ON "git_previews" USING btree ("blueprint_environment_id","repository","number") WHERE "git_previews"."closed_at" is null;--> statement-breakpoint
CREATE INDEX "git_previews_org_idx" ON "git_previews" USING btree ("organization_id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_connection_delivery_key" ON "webhook_deliveries" USING btree ("connection_id","delivery_id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_connection_seq_idx" ON "webhook_deliveries" USING btree ("connection_id","seq");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_pending_idx" ON "webhook_deliveries" USING btree ("seq") WHERE "webhook_deliveries"."status" = 'PENDING';
CREATE TABLE "environment_rules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"project_id" uuid NOT NULL,
	"name_pattern" text NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"mode" "environment_mode",
	"cluster_id" uuid,
	"schedule" jsonb,
	"lifetime_seconds" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "cloned_from_id" uuid;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "schedule" jsonb;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "schedule_checked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "environments" ADD COLUMN "protected" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "environment_rules" ADD CONSTRAINT "environment_rules_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "environment_rules" ADD CONSTRAINT "environment_rules_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "environment_rules" ADD CONSTRAINT "environment_rules_cluster_id_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."clusters"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "environment_rules_project_idx" ON "environment_rules" USING btree ("project_id");--> statement-breakpoint
ALTER TABLE "environments" ADD CONSTRAINT "environments_cloned_from_id_environments_id_fk" FOREIGN KEY ("cloned_from_id") REFERENCES "public"."environments"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "environments_expires_idx" ON "environments" USING btree ("expires_at");
ALTER TYPE "public"."step_status" ADD VALUE 'skipped';--> statement-breakpoint
CREATE TABLE "deployment_stages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"environment_id" uuid NOT NULL,
	"name" text NOT NULL,
	"position" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "services" ADD COLUMN "stage_id" uuid;--> statement-breakpoint
ALTER TABLE "deployment_stages" ADD CONSTRAINT "deployment_stages_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_stages" ADD CONSTRAINT "deployment_stages_environment_id_environments_id_fk" FOREIGN KEY ("environment_id") REFERENCES "public"."environments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "deployment_stages_environment_name_key" ON "deployment_stages" USING btree ("environment_id","name");--> statement-breakpoint
ALTER TABLE "services" ADD CONSTRAINT "services_stage_id_deployment_stages_id_fk" FOREIGN KEY ("stage_id") REFERENCES "public"."deployment_stages"("id") ON DELETE set null ON UPDATE no action;
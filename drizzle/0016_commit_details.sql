ALTER TABLE "deployment_events" ADD COLUMN "commit_info" jsonb;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "commit_details" jsonb DEFAULT '{}'::jsonb NOT NULL;
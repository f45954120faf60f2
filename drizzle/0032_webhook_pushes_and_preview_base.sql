CREATE TABLE "webhook_pushes" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"connection_id" uuid NOT NULL,
	"repository" text NOT NULL,
	"branch" text NOT NULL,
	"before" text,
	"after" text NOT NULL,
	"pushed_at" timestamp with time zone,
	"service_ids" uuid[] DEFAULT '{}'::uuid[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "git_previews" ADD COLUMN "base_branch" text;--> statement-breakpoint
ALTER TABLE "webhook_pushes" ADD CONSTRAINT "webhook_pushes_connection_id_git_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "public"."git_connections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_pushes_branch_seq_idx" ON "webhook_pushes" USING btree ("connection_id","repository","branch","seq");--> statement-breakpoint
CREATE INDEX "webhook_pushes_created_idx" ON "webhook_pushes" USING btree ("created_at");
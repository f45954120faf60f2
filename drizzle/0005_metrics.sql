CREATE TABLE "metric_samples" (
	"service_id" uuid NOT NULL,
	"resolution" smallint DEFAULT 0 NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"cpu_percent" real NOT NULL,
	"memory_bytes" bigint NOT NULL,
	"memory_limit_bytes" bigint,
	"restarts" integer NOT NULL,
	"requests_per_second" real NOT NULL,
	"errors_per_second" real NOT NULL,
	"p50_ms" real,
	"p95_ms" real,
	"p99_ms" real
);
--> statement-breakpoint
CREATE TABLE "shell_sessions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"organization_id" uuid NOT NULL,
	"service_id" uuid NOT NULL,
	"cluster_id" uuid NOT NULL,
	"actor_type" text NOT NULL,
	"actor_id" uuid,
	"actor_label" text NOT NULL,
	"origin" "origin" NOT NULL,
	"ip" text,
	"mode" text NOT NULL,
	"opened_at" timestamp with time zone DEFAULT now() NOT NULL,
	"closed_at" timestamp with time zone,
	"exit_code" integer,
	"close_reason" text
);
--> statement-breakpoint
ALTER TABLE "metric_samples" ADD CONSTRAINT "metric_samples_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shell_sessions" ADD CONSTRAINT "shell_sessions_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shell_sessions" ADD CONSTRAINT "shell_sessions_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shell_sessions" ADD CONSTRAINT "shell_sessions_cluster_id_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."clusters"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "metric_samples_service_resolution_at_key" ON "metric_samples" USING btree ("service_id","resolution","at");--> statement-breakpoint
CREATE INDEX "metric_samples_resolution_at_idx" ON "metric_samples" USING btree ("resolution","at");--> statement-breakpoint
CREATE INDEX "shell_sessions_cluster_open_idx" ON "shell_sessions" USING btree ("cluster_id","closed_at");--> statement-breakpoint
CREATE INDEX "shell_sessions_org_idx" ON "shell_sessions" USING btree ("organization_id");
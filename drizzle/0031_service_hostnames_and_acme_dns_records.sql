CREATE TABLE "acme_dns_records" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" uuid NOT NULL,
	"dns_provider_id" uuid NOT NULL,
	"name" text NOT NULL,
	"value" text NOT NULL,
	"remove_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "service_hostnames" (
	"service_id" uuid PRIMARY KEY NOT NULL,
	"cluster_id" uuid NOT NULL,
	"label" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "acme_dns_records" ADD CONSTRAINT "acme_dns_records_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "acme_dns_records" ADD CONSTRAINT "acme_dns_records_dns_provider_id_dns_providers_id_fk" FOREIGN KEY ("dns_provider_id") REFERENCES "public"."dns_providers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hostnames" ADD CONSTRAINT "service_hostnames_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hostnames" ADD CONSTRAINT "service_hostnames_cluster_id_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."clusters"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "acme_dns_records_provider_name_value_key" ON "acme_dns_records" USING btree ("dns_provider_id","name","value");--> statement-breakpoint
CREATE UNIQUE INDEX "service_hostnames_cluster_label_key" ON "service_hostnames" USING btree ("cluster_id","label");--> statement-breakpoint
-- Every existing service's generated hostname label (server/services/domains.ts), the oldest
-- first: where two services of a cluster already share one, the older keeps the row and the newer
-- gets none. Both keep the hostname they have (users point CNAMEs and bookmarks at them); the
-- creation checks read the names themselves, so a third service is refused it all the same.
INSERT INTO "service_hostnames" ("service_id", "cluster_id", "label")
SELECT s."id", e."cluster_id", s."name" || '-' || e."name" || '-' || p."name"
FROM "services" s
JOIN "environments" e ON e."id" = s."environment_id"
JOIN "projects" p ON p."id" = e."project_id"
ORDER BY s."created_at", s."id"
ON CONFLICT DO NOTHING;

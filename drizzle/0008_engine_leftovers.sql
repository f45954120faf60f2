CREATE TABLE "engine_leftovers" (
	"cluster_id" uuid NOT NULL,
	"service_id" uuid NOT NULL,
	"bytes" bigint NOT NULL,
	"first_reported_at" timestamp with time zone NOT NULL,
	"reported_at" timestamp with time zone NOT NULL,
	"remove_requested_at" timestamp with time zone,
	CONSTRAINT "engine_leftovers_cluster_id_service_id_pk" PRIMARY KEY("cluster_id","service_id")
);
--> statement-breakpoint
ALTER TABLE "engine_leftovers" ADD CONSTRAINT "engine_leftovers_cluster_id_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."clusters"("id") ON DELETE cascade ON UPDATE no action;
ALTER TABLE "clusters" ADD COLUMN "allow_local_repositories" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "clusters" ADD COLUMN "trusted" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "clusters" ADD COLUMN "isolate_loopback" boolean DEFAULT false NOT NULL;
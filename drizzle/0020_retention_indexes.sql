CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "deployment_events_job_runs_idx" ON "deployment_events" USING btree ("service_id","at") WHERE "deployment_events"."step" = 'run' and "deployment_events"."status" = 'succeeded' and "deployment_events"."output_keys" is not null;--> statement-breakpoint
CREATE INDEX "deployments_created_at_idx" ON "deployments" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "log_lines_runtime_at_idx" ON "log_lines" USING btree ("at") WHERE "log_lines"."stream" like 'service:%';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_settled_received_idx" ON "webhook_deliveries" USING btree ("received_at") WHERE "webhook_deliveries"."status" <> 'PENDING';
DROP INDEX "variables_target_key_key";--> statement-breakpoint
CREATE UNIQUE INDEX "variables_target_key_key" ON "variables" USING btree ("target_id","scope","key");
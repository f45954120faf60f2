ALTER TABLE "log_lines" ADD COLUMN "source" text;--> statement-breakpoint
CREATE UNIQUE INDEX "log_lines_stream_source_key" ON "log_lines" USING btree ("stream","source");
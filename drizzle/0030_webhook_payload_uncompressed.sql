-- A webhook payload is stored as received, uncompressed and in its row while the row fits a page
-- (TOAST's default compresses every payload over 2 kB with pglz and moves it out of line): pglz
-- cost PostgreSQL about 40 µs of a delivery's 125 µs of CPU, a third of the intake's insert, for
-- a JSON body about 3.4 times smaller on disk (a 7.7 kB GitHub push: 2.3 kB). Deliveries are kept
-- for their retention only (SLIPWAY_RETENTION_WEBHOOKS_DAYS). Rows stored before keep their form.
-- https://www.postgresql.org/docs/current/storage-toast.html
ALTER TABLE "webhook_deliveries" ALTER COLUMN "payload" SET STORAGE EXTERNAL;
--> statement-breakpoint
ALTER TABLE "webhook_deliveries" SET (toast_tuple_target = 8160);

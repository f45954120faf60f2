-- Webhook bodies (several KB) are written once and read rarely: store them out of line without
-- compression, which otherwise costs more CPU per delivery than the insert itself.
ALTER TABLE "webhook_deliveries" ALTER COLUMN "payload" SET STORAGE EXTERNAL;

CREATE TABLE "rate_limits" (
	"key" varchar(255) PRIMARY KEY NOT NULL,
	"points" integer DEFAULT 0 NOT NULL,
	"expire" bigint
);
--> statement-breakpoint
-- Every web process re-checks the open sockets (and shells) of an organization whose access
-- changed: a member's role changed or the member left (removed, or their user or organization
-- deleted), or an API token was revoked or deleted (issue 13). A trigger, so that no path that
-- changes access can forget to say so; delivered at commit, once per transaction and organization.
CREATE FUNCTION "slipway_access_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('slipway_access_changed', OLD."organization_id"::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "memberships_access_changed" AFTER DELETE OR UPDATE OF "role" ON "memberships"
  FOR EACH ROW EXECUTE FUNCTION "slipway_access_changed"();
--> statement-breakpoint
CREATE TRIGGER "api_tokens_access_changed" AFTER DELETE OR UPDATE OF "revoked_at", "created_by_id" ON "api_tokens"
  FOR EACH ROW EXECUTE FUNCTION "slipway_access_changed"();

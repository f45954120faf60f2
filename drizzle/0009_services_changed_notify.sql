-- Every web process caches which repositories an organization's services are built from (the
-- webhook intake settles pushes to other repositories at once): any change to a service tells
-- them to forget that organization's set. Identical notifications of one transaction (a clone
-- of twenty services) are delivered once.
CREATE FUNCTION "slipway_services_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('slipway_services_changed', COALESCE(NEW."organization_id", OLD."organization_id")::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "services_changed" AFTER INSERT OR DELETE OR UPDATE OF "config" ON "services"
  FOR EACH ROW EXECUTE FUNCTION "slipway_services_changed"();

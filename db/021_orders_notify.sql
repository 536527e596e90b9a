-- The route handler keeps the set of caller numbers that have an open order in memory, so a new
-- caller (most of a TV-ad peak) costs no query. It learns of new and changed orders from this
-- notification (payload: the customer's number) and asks the database only for numbers in the set.
CREATE FUNCTION cti_orders_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cti_orders', c.number) FROM customers c WHERE c.id = NEW.customer_id;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE OF status, customer_id, owner_agent ON orders
    FOR EACH ROW EXECUTE FUNCTION cti_orders_notify();

from django.db import migrations

# The audit trail is append-only: the database itself refuses to rewrite history. The only
# UPDATE allowed is Django's SET NULL of actor_id when a user account is deleted.
SQL = """
CREATE OR REPLACE FUNCTION annotations_event_append_only() RETURNS trigger AS $$
BEGIN
    IF (to_jsonb(NEW) - 'actor_id') IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id') OR NEW.actor_id IS NOT NULL THEN
        RAISE EXCEPTION 'annotation events are append-only';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER annotations_event_append_only BEFORE UPDATE ON annotations_annotationevent
    FOR EACH ROW EXECUTE FUNCTION annotations_event_append_only();
"""
REVERSE = """
DROP TRIGGER IF EXISTS annotations_event_append_only ON annotations_annotationevent;
DROP FUNCTION IF EXISTS annotations_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]

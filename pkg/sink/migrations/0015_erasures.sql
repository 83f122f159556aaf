-- erasures: the audit of every erasure of a person's data (pkg/erasure,
-- notifyctl erase, the sink's erase API). One row per erasure, written
-- after every table was cleared. It never holds the number in clear:
--
--   erasure_id      random UUID, also printed to whoever asked
--   requested_at    when the erasure started; finished_at when every table was clear
--   actor           who asked (notifyctl: $USER or --actor; API: the token's name)
--   via             notifyctl or api
--   tenant          the tenant whose rows were erased ('' = every tenant)
--   reason          free text given with the request (a ticket reference)
--   recipient_hash  hex HMAC-SHA256(key, salt || number), key =
--                   WANOTIFY_PRIVACY_HASH_KEY (empty when unset: then only
--                   the salt protects the number, see docs/security.md)
--   hash_salt       hex, 16 random bytes per row
--   hash_keyed      whether a key was configured
--   notifications   distinct notifications erased
--   rows_deleted    table -> rows removed
--
-- The table has no TTL: it is the proof that erasures happened, and holds
-- nothing that identifies a person without the key.
CREATE TABLE IF NOT EXISTS erasures
(
    erasure_id     String,
    requested_at   DateTime64(3, 'UTC'),
    finished_at    DateTime64(3, 'UTC'),
    actor          String,
    via            LowCardinality(String),
    tenant         LowCardinality(String),
    reason         String,
    recipient_hash String,
    hash_salt      String,
    hash_keyed     Bool,
    notifications  UInt64,
    rows_deleted   Map(String, UInt64)
)
ENGINE = MergeTree
ORDER BY (requested_at, erasure_id);

-- Keys this installation signs with (dashboard links), made once at the first start and shared by
-- every replica through the database. Hex, 32 random bytes.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);

-- _hash.sql - the password-hash rules every importer shares, as functions
-- of this session only (pg_temp: the old database needs to grant nothing
-- but TEMP, which PUBLIC has by default).  Included by each importer with
-- \ir; not an importer itself.
--
-- mr_hash_refused(hash): why mailroster would refuse a {SCHEME}hash, or
-- NULL when it takes it (mirrors mailroster.password_hash_problem() in
-- migration 0004, which the importers cannot call: they run on the old
-- database).  Refused: plaintext, MD5 and DES crypt, anything but {CRYPT}
-- $y$/$gy$/$2?$/$5$/$6$/$7$, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT}
-- and {ARGON2ID}.  A hash of an accepted scheme that is malformed passes
-- here: the import refuses it and names its line.
CREATE FUNCTION pg_temp.mr_hash_refused(hash_in text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
             WHEN hash_in IS NULL THEN NULL
             WHEN hash_in ~ '^\{(PLAIN|CLEAR)' THEN 'plaintext schemes are refused'
             WHEN hash_in ~ '^\{MD5-CRYPT\}' OR hash_in ~ '^\{CRYPT\}\$1\$' THEN 'MD5 crypt is too weak'
             WHEN hash_in ~ '^\{CRYPT\}[./0-9A-Za-z]{13}$' THEN 'DES crypt is too weak'
             WHEN hash_in ~ '^\{CRYPT\}' AND hash_in !~ '^\{CRYPT\}\$(g?y|2[aby]|[567])\$' THEN
                  'only the $y$, $gy$, $2a$, $2b$, $2y$, $5$, $6$ and $7$ crypt forms are accepted'
             WHEN hash_in !~ '^\{(CRYPT|BLF-CRYPT|SHA512-CRYPT|SHA256-CRYPT|ARGON2ID)\}' THEN
                  'mailroster accepts {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT} and {ARGON2ID}'
           END
$$;

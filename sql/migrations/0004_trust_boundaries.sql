-- mailroster migration 0004: what the schema itself refuses, whoever writes.
--
-- Apply with:  psql -v ON_ERROR_STOP=1 -X -d DB -f sql/migrations/0004_trust_boundaries.sql
-- (as the schema owner; then run sql/roles.sql).  One transaction.
--
-- 1. Mail paths stay under mail_base.  mailroster.settings (one row) holds
--    mail_base, default /var/vmail, the same as mailrosterd's mail_base
--    (keep the two equal: UPDATE mailroster.settings SET mail_base = '...').
--    A mailbox's home must be an absolute path under mail_base, and every
--    path in its mail location must be ~ or ~/... (the home) or an absolute
--    path under mail_base; no "." or ".." components, no "//".  A mailbox
--    with path_override = true is exempt (a full admin's explicit choice;
--    the admin socket lets only admins set it).  Rows that existed before
--    this migration and break the rule get path_override = true, and a
--    NOTICE says how many: review them.
-- 2. Password hashes: one definition of the accepted forms,
--    mailroster.password_hash_problem(text) (NULL when the hash is
--    accepted, else the reason) and mailroster.password_hash_ok(text).  The
--    admin socket's check (lib/pwhash.c) accepts exactly the same strings;
--    tests/unit/pwhash_cases.tsv is the table both are tested against.  The
--    CHECK constraints mailboxes_password_check and master_users_password_check
--    use it, and a trigger names the reason.  If stored rows hold a hash
--    that is refused (plaintext, malformed, MD5 crypt, ...), this migration
--    stops and lists them: give those accounts a new hash (mailroster user
--    passwd) or NULL (mailboxes only), then apply it again.
-- 3. Mailbox/alias exclusivity under any isolation level:
--    mailroster.claimed_addresses has one row per mailbox and per alias,
--    kept by triggers, and a primary key on (domain_id, local_part).  A
--    unique index sees rows committed after the writer's snapshot, so a
--    REPEATABLE READ or SERIALIZABLE writer cannot add an alias for an
--    address a mailbox took meanwhile (or the other way round).  The
--    migration stops if the tables already hold such a pair.

\set ON_ERROR_STOP 1

BEGIN;

------------------------------------------------------------------------------
-- 1. Mail paths
------------------------------------------------------------------------------

-- An absolute path without ".", ".." or empty components and without
-- control characters.
CREATE FUNCTION mailroster.path_is_clean(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL
       AND p ~ '^/'
       AND p !~ '(^|/)\.\.?(/|$)'
       AND strpos(p, '//') = 0
       AND p !~ '[\x01-\x1f\x7f]';

CREATE TABLE mailroster.settings (
    one       boolean PRIMARY KEY DEFAULT true
              CONSTRAINT settings_one_row CHECK (one),
    mail_base text NOT NULL DEFAULT '/var/vmail'
              CONSTRAINT settings_mail_base_check CHECK (mailroster.path_is_clean(mail_base))
);
COMMENT ON TABLE mailroster.settings IS
    'One row. mail_base: the directory every mailbox home and mail path must be under (unless path_override); keep it equal to mailrosterd''s mail_base.';
INSERT INTO mailroster.settings DEFAULT VALUES;

-- Is p (clean, absolute) base itself or below it?
CREATE FUNCTION mailroster.path_is_under(p text, base text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN mailroster.path_is_clean(p)
       AND mailroster.path_is_clean(base)
       AND (rtrim(base, '/') = ''
            OR rtrim(p, '/') = rtrim(base, '/')
            OR left(p, length(rtrim(base, '/')) + 1) = rtrim(base, '/') || '/');

-- Why home / mail of a mailbox leave base; NULL when they do not.  A mail
-- location is [FORMAT:]PATH[:KEY=VALUE...]; every part or value that looks
-- like a path (has a "/" or starts with "~") must be ~, ~/... without "."
-- or ".." components, or a clean absolute path under base.
CREATE FUNCTION mailroster.mail_paths_problem(home text, mail text, base text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    part text;
    v    text;
BEGIN
    IF home IS NOT NULL AND NOT mailroster.path_is_under(home, base) THEN
        RETURN format('home %s is not a clean absolute path under mail_base %s', home, base);
    END IF;
    IF mail IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH part IN ARRAY string_to_array(mail, ':') LOOP
        v := CASE WHEN strpos(part, '=') > 0 THEN substr(part, strpos(part, '=') + 1) ELSE part END;
        CONTINUE WHEN strpos(v, '/') = 0 AND left(v, 1) <> '~';
        IF v = '~' OR (left(v, 2) = '~/' AND mailroster.path_is_clean(substr(v, 2))) THEN
            CONTINUE;
        END IF;
        IF NOT mailroster.path_is_under(v, base) THEN
            RETURN format('mail location path %s is neither ~/... nor a clean absolute path under mail_base %s',
                          v, base);
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

ALTER TABLE mailroster.mailboxes
    ADD COLUMN path_override boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN mailroster.mailboxes.path_override IS
    'true: home and mail may point outside settings.mail_base (set by a full admin only)';

-- BEFORE INSERT OR UPDATE ON mailboxes: home and mail under mail_base.
-- Checked when they (or path_override) change, so that moving mail_base
-- does not block unrelated updates of older rows.
CREATE FUNCTION mailroster.tg_mailbox_paths() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    base text;
    why  text;
BEGIN
    IF NEW.path_override OR (NEW.home IS NULL AND NEW.mail IS NULL) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.home IS NOT DISTINCT FROM OLD.home AND NEW.mail IS NOT DISTINCT FROM OLD.mail
       AND NOT OLD.path_override THEN
        RETURN NEW;
    END IF;
    SELECT s.mail_base INTO base FROM mailroster.settings s;
    why := mailroster.mail_paths_problem(NEW.home, NEW.mail, coalesce(base, '/var/vmail'));
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'mailbox paths refused (mailboxes_paths_under_mail_base): %', why
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mailboxes_paths_under_mail_base',
                  HINT = 'a full admin may set path_override = true';
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER mailboxes_25_paths BEFORE INSERT OR UPDATE ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_mailbox_paths();

-- Existing rows keep working: the ones outside mail_base are marked.
DO $paths$
DECLARE
    n bigint;
BEGIN
    UPDATE mailroster.mailboxes m SET path_override = true
     WHERE mailroster.mail_paths_problem(m.home, m.mail, (SELECT mail_base FROM mailroster.settings)) IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RAISE NOTICE 'migration 0004: % mailboxes have a home or mail location outside mail_base %; they keep them with path_override = true: review them (SELECT ... WHERE path_override)',
            n, (SELECT mail_base FROM mailroster.settings);
    END IF;
END
$paths$;

------------------------------------------------------------------------------
-- 2. Password hashes: the one definition of the accepted forms.  Keep it
-- equal to lib/pwhash.c: tests/unit/pwhash_cases.tsv runs through both.
------------------------------------------------------------------------------

-- NULL when p is an accepted hash, else why not (never quoting the hash).
CREATE FUNCTION mailroster.password_hash_problem(p text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    c64 CONSTANT text := '[./0-9A-Za-z]';
    b64 CONSTANT text := '[+/0-9A-Za-z]';
    scheme text;
    body   text;
    m      text[];
    mm     numeric;
    tt     numeric;
    pp     numeric;
BEGIN
    IF p IS NULL OR p = '' THEN
        RETURN 'password hash is empty';
    END IF;
    IF p !~ '^[\x21-\x7e]+$' THEN
        RETURN 'password hash has a space, a control or a non-ASCII character';
    END IF;
    IF length(p) > 512 THEN
        RETURN 'password hash is longer than 512 characters';
    END IF;
    m := regexp_match(p, '^(\{[^}]*\})(.*)$');
    IF m IS NULL THEN
        RETURN 'password hash has no {SCHEME} prefix, such as {CRYPT}';
    END IF;
    scheme := m[1];
    body := m[2];
    IF upper(scheme) LIKE '{PLAIN%' OR upper(scheme) LIKE '{CLEAR%' THEN
        RETURN 'plaintext password schemes are refused; give a hash';
    END IF;
    IF scheme NOT IN ('{CRYPT}', '{BLF-CRYPT}', '{SHA512-CRYPT}', '{SHA256-CRYPT}', '{ARGON2ID}') THEN
        RETURN 'unknown password hash scheme; use {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT} or {ARGON2ID}';
    END IF;

    IF scheme = '{ARGON2ID}' THEN
        m := regexp_match(body, '^\$argon2id\$v=19\$m=(0|[1-9][0-9]{0,9}),t=(0|[1-9][0-9]{0,9}),p=(0|[1-9][0-9]{0,9})\$('
                                || b64 || '+)\$(' || b64 || '+)$');
        IF m IS NULL THEN
            RETURN 'not an argon2id hash ($argon2id$v=19$m=N,t=N,p=N$salt$hash, base64 without padding)';
        END IF;
        mm := m[1]::numeric; tt := m[2]::numeric; pp := m[3]::numeric;
        IF mm > 4294967295 OR tt > 4294967295 OR pp > 4294967295 THEN
            RETURN 'argon2id parameter above 4294967295';
        ELSIF tt < 1 THEN
            RETURN 'argon2id t= must be at least 1';
        ELSIF pp < 1 OR pp > 16777215 THEN
            RETURN 'argon2id p= must be 1 to 16777215';
        ELSIF mm < 8 * pp THEN
            RETURN 'argon2id m= must be at least 8 times p=';
        ELSIF length(m[4]) < 11 OR length(m[4]) % 4 = 1 THEN
            RETURN 'argon2id salt must be at least 8 bytes of base64 of a possible length';
        ELSIF length(m[5]) < 22 OR length(m[5]) % 4 = 1 THEN
            RETURN 'argon2id hash part must be at least 16 bytes of base64 of a possible length';
        END IF;
        RETURN NULL;
    END IF;

    -- the crypt(3) forms each scheme may hold
    IF body ~ ('^\$2[aby]\$') AND scheme IN ('{CRYPT}', '{BLF-CRYPT}') THEN
        IF body ~ ('^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$' || c64 || '{53}$') THEN
            RETURN NULL;
        END IF;
        RETURN 'not a bcrypt hash ($2b$NN$ with cost 04 to 31, then 53 characters of ' || c64 || ')';
    ELSIF body ~ '^\$6\$' AND scheme IN ('{CRYPT}', '{SHA512-CRYPT}') THEN
        IF body ~ ('^\$6\$(rounds=[1-9][0-9]{3,8}\$)?' || c64 || '{1,16}\$' || c64 || '{86}$') THEN
            RETURN NULL;
        END IF;
        RETURN 'not a SHA-512 crypt hash ($6$[rounds=N$]salt$ and 86 characters)';
    ELSIF body ~ '^\$5\$' AND scheme IN ('{CRYPT}', '{SHA256-CRYPT}') THEN
        IF body ~ ('^\$5\$(rounds=[1-9][0-9]{3,8}\$)?' || c64 || '{1,16}\$' || c64 || '{43}$') THEN
            RETURN NULL;
        END IF;
        RETURN 'not a SHA-256 crypt hash ($5$[rounds=N$]salt$ and 43 characters)';
    ELSIF scheme = '{CRYPT}' AND body ~ '^\$g?y\$' THEN
        IF body ~ ('^\$g?y\$' || c64 || '+\$' || c64 || '+\$' || c64 || '{43}$') THEN
            RETURN NULL;
        END IF;
        RETURN 'not a yescrypt hash ($y$params$salt$ and 43 characters)';
    ELSIF scheme = '{CRYPT}' AND body ~ '^\$7\$' THEN
        IF body ~ ('^\$7\$' || c64 || '{12,}\$' || c64 || '{43}$') THEN
            RETURN NULL;
        END IF;
        RETURN 'not a scrypt hash ($7$, parameters and salt, $ and 43 characters)';
    END IF;
    RETURN CASE scheme
        WHEN '{CRYPT}' THEN '{CRYPT} hash must be $y$, $gy$, $2a$, $2b$, $2y$, $5$, $6$ or $7$ (MD5 and DES crypt are too weak)'
        WHEN '{BLF-CRYPT}' THEN '{BLF-CRYPT} hash must start with $2a$, $2b$ or $2y$'
        WHEN '{SHA512-CRYPT}' THEN '{SHA512-CRYPT} hash must start with $6$'
        ELSE '{SHA256-CRYPT} hash must start with $5$' END;
END
$fn$;
COMMENT ON FUNCTION mailroster.password_hash_problem(text) IS
    'NULL when the text is an accepted {SCHEME} password hash (the forms lib/pwhash.c accepts), else why not';

CREATE FUNCTION mailroster.password_hash_ok(p text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN p IS NOT NULL AND mailroster.password_hash_problem(p) IS NULL;

-- Stored hashes that are refused stop the migration, named by account.
DO $hashes$
DECLARE
    n bigint;
    who text;
BEGIN
    SELECT count(*), string_agg(x.k, ', ' ORDER BY x.k) FILTER (WHERE x.r <= 20)
      INTO n, who
      FROM (SELECT k, row_number() OVER (ORDER BY k) AS r FROM (
              SELECT 'mailbox ' || m.local_part || '@' || d.name || ' (' || mailroster.password_hash_problem(m.password) || ')' AS k
                FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
               WHERE m.password IS NOT NULL AND NOT mailroster.password_hash_ok(m.password)
              UNION ALL
              SELECT 'master user ' || u.name || ' (' || mailroster.password_hash_problem(u.password) || ')'
                FROM mailroster.master_users u
               WHERE NOT mailroster.password_hash_ok(u.password)) y) x;
    IF n > 0 THEN
        RAISE EXCEPTION 'migration 0004: % stored password hashes are not accepted hashes: %', n,
            who || CASE WHEN n > 20 THEN ', ...' ELSE '' END
            USING HINT = 'give these accounts a new hash (mailroster user passwd / master add) or, for mailboxes, NULL; then apply 0004 again';
    END IF;
END
$hashes$;

ALTER TABLE mailroster.mailboxes DROP CONSTRAINT mailboxes_password_check;
ALTER TABLE mailroster.mailboxes ADD CONSTRAINT mailboxes_password_check
    CHECK (password IS NULL OR mailroster.password_hash_ok(password));
ALTER TABLE mailroster.master_users DROP CONSTRAINT master_users_password_check;
ALTER TABLE mailroster.master_users ADD CONSTRAINT master_users_password_check
    CHECK (mailroster.password_hash_ok(password));

-- BEFORE INSERT OR UPDATE OF password: say why a hash is refused (the
-- CHECK constraint alone would only name itself).
CREATE FUNCTION mailroster.tg_password_form() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    why text;
BEGIN
    IF NEW.password IS NOT NULL THEN
        why := mailroster.password_hash_problem(NEW.password);
        IF why IS NOT NULL THEN
            RAISE EXCEPTION 'password refused (%): %', TG_TABLE_NAME || '_password_check', why
                USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_password_check';
        END IF;
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER mailboxes_15_password BEFORE INSERT OR UPDATE OF password ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_password_form();
CREATE TRIGGER master_users_15_password BEFORE INSERT OR UPDATE OF password ON mailroster.master_users
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_password_form();

------------------------------------------------------------------------------
-- 3. Claimed addresses
------------------------------------------------------------------------------

CREATE TABLE mailroster.claimed_addresses (
    domain_id  bigint NOT NULL,
    local_part text NOT NULL,
    kind       text NOT NULL
               CONSTRAINT claimed_addresses_kind_check CHECK (kind IN ('mailbox', 'alias')),
    CONSTRAINT claimed_addresses_pkey PRIMARY KEY (domain_id, local_part)
);
COMMENT ON TABLE mailroster.claimed_addresses IS
    'One row per mailbox and per alias (kept by triggers): its primary key makes an address a mailbox or an alias, never both, under any isolation level.';

DO $claims$
DECLARE
    n bigint;
    who text;
BEGIN
    SELECT count(*), string_agg(a.local_part || '@' || d.name, ', ' ORDER BY a.local_part, d.name)
      INTO n, who
      FROM mailroster.aliases a
      JOIN mailroster.mailboxes m USING (domain_id, local_part)
      JOIN mailroster.domains d ON d.id = a.domain_id;
    IF n > 0 THEN
        RAISE EXCEPTION 'migration 0004: % addresses are both a mailbox and an alias: %', n, who
            USING HINT = 'remove the alias or the mailbox of each, then apply 0004 again';
    END IF;
END
$claims$;

INSERT INTO mailroster.claimed_addresses (domain_id, local_part, kind)
SELECT domain_id, local_part, 'mailbox' FROM mailroster.mailboxes
UNION ALL
SELECT domain_id, local_part, 'alias' FROM mailroster.aliases;

-- AFTER INSERT OR UPDATE OR DELETE ON mailboxes and aliases.  SECURITY
-- DEFINER: writers need no rights on claimed_addresses.  The primary key
-- is checked against the latest committed rows (waiting for an open
-- writer of the same key), whatever snapshot the writer reads with.
CREATE FUNCTION mailroster.tg_claim_address() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = mailroster, pg_temp
AS $fn$
DECLARE
    k text := CASE TG_TABLE_NAME WHEN 'mailboxes' THEN 'mailbox' ELSE 'alias' END;
    dname text;
    n bigint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF TG_OP = 'UPDATE' AND NEW.domain_id = OLD.domain_id AND NEW.local_part = OLD.local_part THEN
            RETURN NULL;
        END IF;
        DELETE FROM mailroster.claimed_addresses c
         WHERE c.domain_id = OLD.domain_id AND c.local_part = OLD.local_part AND c.kind = k;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- (no exception block: a subtransaction per row would cost a bulk
        -- import dearly; a key another open or newer transaction holds
        -- fails here with unique_violation or serialization_failure)
        INSERT INTO mailroster.claimed_addresses (domain_id, local_part, kind)
        VALUES (NEW.domain_id, NEW.local_part, k)
        ON CONFLICT (domain_id, local_part) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            SELECT d.name INTO dname FROM mailroster.domains d WHERE d.id = NEW.domain_id;
            RAISE EXCEPTION 'address %@% is already %; it cannot also be %',
                NEW.local_part, dname, CASE k WHEN 'mailbox' THEN 'an alias' ELSE 'a mailbox' END,
                CASE k WHEN 'mailbox' THEN 'a mailbox' ELSE 'an alias' END
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_mailbox_alias_conflict';
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER mailboxes_80_claim AFTER INSERT OR UPDATE OR DELETE ON mailroster.mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_claim_address();
CREATE TRIGGER aliases_80_claim AFTER INSERT OR UPDATE OR DELETE ON mailroster.aliases
    FOR EACH ROW EXECUTE FUNCTION mailroster.tg_claim_address();

REVOKE ALL ON FUNCTION
    mailroster.tg_mailbox_paths(),
    mailroster.tg_password_form(),
    mailroster.tg_claim_address()
FROM PUBLIC;
REVOKE ALL ON FUNCTION
    mailroster.path_is_clean(text),
    mailroster.path_is_under(text, text),
    mailroster.mail_paths_problem(text, text, text),
    mailroster.password_hash_problem(text),
    mailroster.password_hash_ok(text)
FROM PUBLIC;
REVOKE ALL ON mailroster.settings, mailroster.claimed_addresses FROM PUBLIC;

INSERT INTO mailroster.schema_version (version, description)
VALUES (4, 'mail paths under mail_base, one password hash check, claimed addresses');

COMMIT;

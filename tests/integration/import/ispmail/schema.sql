-- The ISP-mail tutorial's schema (seed 002: the PostgreSQL version of the
-- tutorial; "Create database, tables and views"), copied exactly: its three
-- DOMAINs, four tables, four views, the two rules Dovecot's shared-mailbox
-- dict writes through, and the grants of its mail_user role (the role itself
-- and GRANT CONNECT are made by import_test.sh: they name the database).
CREATE DOMAIN local_part TEXT
  NOT NULL
  CHECK (
LENGTH(VALUE) <= 64
  );

CREATE DOMAIN domain_part TEXT
  NOT NULL
  CHECK (
LENGTH(VALUE) <= 253
  );

CREATE DOMAIN user_input TEXT
  CHECK (
LENGTH(VALUE) <= 256
  );

CREATE TABLE domains (
    domain domain_part PRIMARY KEY -- e.g. example.com
);

CREATE TABLE users (
    domain domain_part REFERENCES domains(domain) ON DELETE RESTRICT,
    local local_part NOT NULL, -- e.g. alice
    password_hash user_input,
    display_name user_input,
    PRIMARY KEY(domain, local),
    -- entire e-mail address should not exceed 254 characters (RFC 3696)
    CHECK(char_length(local || domain) <= 254)
);

CREATE TABLE aliases (
    -- source is the alias, destination is the real e-mail account
    -- local and domain part are stored separatelly to enable proper REFERENCES
    source_local local_part NOT NULL,
    source_domain domain_part REFERENCES domains(domain) ON DELETE RESTRICT,
    destination_local local_part,
    destination_domain domain_part,
    PRIMARY KEY(source_local, source_domain),
    FOREIGN KEY (destination_local, destination_domain) REFERENCES users (local, domain) ON DELETE CASCADE,
    -- entire e-mail address should not exceed 254 characters (RFC 3696)
    CHECK(char_length(source_local || source_domain) <= 254)
    -- destination needs no check because it references already existing (and already checked) rows.
);

CREATE TABLE shared_mailboxes (
    -- local and domain part are stored separately to enable proper REFERENCES
    shared_mailbox_local local_part,
    shared_mailbox_domain domain_part,
    shared_to_local local_part,
    shared_to_domain domain_part,
    PRIMARY KEY (shared_mailbox_local, shared_mailbox_domain, shared_to_local, shared_to_domain),
    FOREIGN KEY (shared_mailbox_local, shared_mailbox_domain) REFERENCES users (local, domain) ON DELETE CASCADE,
    FOREIGN KEY (shared_to_local, shared_to_domain) REFERENCES users (local, domain) ON DELETE CASCADE
);

CREATE VIEW users_fqda AS
    -- fqda = Fully qualified domain address, e.g. alice@example.com
    SELECT users.local || '@' || domains.domain AS "fqda", users.password_hash, users.display_name
    FROM users, domains
    WHERE users.domain = domains.domain;
CREATE VIEW aliases_fqda AS
    -- fqda = Fully qualified domain address,  e.g. alice@example.com
    SELECT source_local || '@' || source_domain AS "fqda"
    FROM aliases;
CREATE VIEW view_shared_mailboxes AS
    -- This view is needed for Dovecot because it needs fqda's and can't handle separate local and domain parts
    -- dummy is 1 always because Dovecot needs this. Probably to indicate that this share is active.
    SELECT shared_mailbox_local || '@' || shared_mailbox_domain AS "shared_mailbox", shared_to_local || '@' || shared_to_domain AS "shared_to", 1 AS "dummy"
    FROM shared_mailboxes;
CREATE VIEW view_public_mailboxes AS
    -- dummy view to satisfy Dovecot's shared/shared-boxes/anyone pattern mapping
    SELECT NULL as "public_mailbox", NULL as "dummy" LIMIT 0;

CREATE RULE view_shared_mailboxes_insert AS ON INSERT TO view_shared_mailboxes
  DO INSTEAD
  INSERT INTO shared_mailboxes (shared_mailbox_local, shared_mailbox_domain, shared_to_local, shared_to_domain)
  VALUES (split_part(NEW.shared_mailbox,'@',1), split_part(NEW.shared_mailbox,'@',2), split_part(NEW.shared_to,'@',1), split_part(NEW.shared_to,'@',2));
CREATE RULE view_shared_mailboxes_delete AS ON DELETE TO view_shared_mailboxes
  DO INSTEAD
  DELETE FROM shared_mailboxes
  WHERE shared_mailbox_local = split_part(OLD.shared_mailbox,'@',1) AND
shared_mailbox_domain = split_part(OLD.shared_mailbox,'@',2) AND
shared_to_local = split_part(OLD.shared_to,'@',1) AND
shared_to_domain = split_part(OLD.shared_to,'@',2);

GRANT SELECT ON domains, users, aliases, users_fqda, aliases_fqda, view_shared_mailboxes, view_public_mailboxes TO mail_user;

GRANT INSERT, DELETE ON view_shared_mailboxes TO mail_user;


-- PostfixAdmin's tables (PostgreSQL flavour, the columns that matter, as
-- public/upgrade.php leaves them), with the data people have.
CREATE TABLE domain (
    domain      varchar(255) PRIMARY KEY,
    description varchar(255) NOT NULL DEFAULT '',
    aliases     integer NOT NULL DEFAULT 0,
    mailboxes   integer NOT NULL DEFAULT 0,
    maxquota    bigint NOT NULL DEFAULT 0,
    quota       bigint NOT NULL DEFAULT 0,
    transport   varchar(255) DEFAULT NULL,
    backupmx    boolean NOT NULL DEFAULT false,
    created     timestamptz DEFAULT now(),
    modified    timestamptz DEFAULT now(),
    active      boolean NOT NULL DEFAULT true
);
CREATE TABLE mailbox (
    username    varchar(255) PRIMARY KEY,
    password    varchar(255) NOT NULL DEFAULT '',
    name        varchar(255) NOT NULL DEFAULT '',
    maildir     varchar(255) NOT NULL DEFAULT '',
    quota       bigint NOT NULL DEFAULT 0,
    local_part  varchar(255) NOT NULL,
    domain      varchar(255) NOT NULL REFERENCES domain,
    created     timestamptz DEFAULT now(),
    modified    timestamptz DEFAULT now(),
    active      boolean NOT NULL DEFAULT true,
    smtp_active boolean NOT NULL DEFAULT true
);
CREATE TABLE alias (
    address  varchar(255) PRIMARY KEY,
    goto     text NOT NULL,
    domain   varchar(255) NOT NULL REFERENCES domain,
    created  timestamptz DEFAULT now(),
    modified timestamptz DEFAULT now(),
    active   boolean NOT NULL DEFAULT true
);
CREATE TABLE alias_domain (
    alias_domain  varchar(255) PRIMARY KEY REFERENCES domain,
    target_domain varchar(255) NOT NULL REFERENCES domain,
    created       timestamptz DEFAULT now(),
    modified      timestamptz DEFAULT now(),
    active        boolean NOT NULL DEFAULT true
);

INSERT INTO domain (domain, description, maxquota, quota, backupmx, active) VALUES
    ('ALL', '', 0, 0, false, true),                 -- PostfixAdmin's superadmin pseudo-domain
    ('example.com', 'main', 2048, 0, false, true),
    ('old.example', 'disabled', 0, 0, false, false),
    ('alias.example', 'alias domain', 0, 0, false, true),
    ('relay.example', 'backup MX', 0, 0, true, true),
    ('Shop.Example', 'mixed case', 0, 1000, false, true);

INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active, smtp_active) VALUES
    ('alice@example.com', '$1$abcdefgh$0123456789abcdefghijkl', 'Alice A.', 'example.com/alice/', 1024000000, 'alice', 'example.com', true, true),
    ('bob@example.com', '{SHA512-CRYPT}$6$salt$BBaia6VUM0KGsZVJGOyte6bDNXW0nfkV/zNntc737Nk7HwtDZjZmeyezYwEVQ5cfHIHDFR1e9yczUBwf8zw0rw', '', 'example.com/bob/', 0, 'bob', 'example.com', true, false),
    ('carol@example.com', '$6$salt$7L7BmIbB2zRmre4xVv3AhPCnyCGTTs6KU51ZMqN/0iF0b2sIAAHbG/pjmnqqSTjMPBNLZ5fnjNYPUPPtpIvXOe', 'Carol', 'example.com/carol/', 0, 'carol', 'example.com', false, true),
    ('dan@old.example', '{BLF-CRYPT}$2y$10$0gKQScQ27gX4dCHPp5qHl/JOoEkJ6rQsKr/B9oJo5dXjM4jiUTqnI', '', 'old.example/dan/', 0, 'dan', 'old.example', true, true),
    ('Eve@Shop.Example', 'plaintext?', '', '../escape/', 0, 'Eve', 'Shop.Example', true, true);

INSERT INTO alias (address, goto, domain, active) VALUES
    -- the rows PostfixAdmin keeps for every mailbox: dropped
    ('alice@example.com', 'alice@example.com', 'example.com', true),
    ('carol@example.com', 'carol@example.com,carol#example.com@autoreply.example.com', 'example.com', true),  -- vacation on
    ('dan@old.example', 'dan@old.example', 'old.example', true),
    ('Eve@Shop.Example', 'Eve@Shop.Example', 'Shop.Example', true),
    -- a forward of a mailbox (with a copy): refused
    ('bob@example.com', 'bob@example.com,bob@elsewhere.test', 'example.com', true),
    -- plain aliases; goto with spaces, a vacation address, an inactive alias
    ('info@example.com', 'alice@example.com, carol@example.com', 'example.com', true),
    ('sales@example.com', 'alice@example.com,alice#example.com@autoreply.example.com', 'example.com', true),
    ('old@example.com', 'alice@example.com', 'example.com', false),
    -- catch-all
    ('@example.com', 'alice@example.com', 'example.com', true);

INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES
    ('alias.example', 'example.com', true);

-- vmm 0.7's tables (the columns of create_tables.pgsql; functions, views and
-- triggers left out), with the data people have: an alias domain, an alias
-- row with an empty address (never matched), an alias that is also a
-- mailbox, placeholders in destinations, a catch-all, relocated users.
CREATE TABLE transport (tid bigserial PRIMARY KEY, transport varchar(270) NOT NULL UNIQUE);
CREATE TABLE mailboxformat (fid bigserial PRIMARY KEY, format varchar(20) NOT NULL UNIQUE);
CREATE TABLE maillocation (mid bigserial PRIMARY KEY, fid bigint NOT NULL DEFAULT 1 REFERENCES mailboxformat,
                           directory varchar(20) NOT NULL, extra varchar(1024));
CREATE TABLE quotalimit (qid bigserial PRIMARY KEY, bytes bigint NOT NULL, messages integer NOT NULL DEFAULT 0,
                         UNIQUE (bytes, messages));
CREATE TABLE service_set (ssid bigserial PRIMARY KEY, smtp boolean NOT NULL DEFAULT true,
                          pop3 boolean NOT NULL DEFAULT true, imap boolean NOT NULL DEFAULT true,
                          sieve boolean NOT NULL DEFAULT true, UNIQUE (smtp, pop3, imap, sieve));
CREATE TABLE domain_data (gid bigint PRIMARY KEY, qid bigint NOT NULL DEFAULT 1 REFERENCES quotalimit,
                          ssid bigint NOT NULL DEFAULT 1 REFERENCES service_set,
                          tid bigint NOT NULL DEFAULT 1 REFERENCES transport,
                          domaindir varchar(40) NOT NULL, note text);
CREATE TABLE domain_name (domainname varchar(255) PRIMARY KEY, gid bigint NOT NULL REFERENCES domain_data,
                          is_primary boolean NOT NULL);
CREATE TABLE users (local_part varchar(64) NOT NULL, passwd varchar(270) NOT NULL, name varchar(128),
                    uid bigint NOT NULL UNIQUE, gid bigint NOT NULL REFERENCES domain_data,
                    mid bigint NOT NULL DEFAULT 1 REFERENCES maillocation,
                    qid bigint REFERENCES quotalimit, ssid bigint REFERENCES service_set,
                    tid bigint REFERENCES transport, note text,
                    PRIMARY KEY (local_part, gid));
CREATE TABLE alias (gid bigint NOT NULL REFERENCES domain_data, address varchar(64) NOT NULL,
                    destination varchar(320) NOT NULL, PRIMARY KEY (gid, address, destination));
CREATE TABLE relocated (gid bigint NOT NULL REFERENCES domain_data, address varchar(64) NOT NULL,
                        destination varchar(320) NOT NULL, PRIMARY KEY (gid, address));
CREATE TABLE catchall (gid bigint NOT NULL REFERENCES domain_data, destination varchar(320) NOT NULL,
                       PRIMARY KEY (gid, destination));

INSERT INTO transport (tid, transport) VALUES (1, 'lmtp:unix:private/dovecot-lmtp'), (2, 'smtp:[backup.example.net]');
INSERT INTO mailboxformat (fid, format) VALUES (1, 'maildir'), (2, 'mdbox'), (3, 'sdbox');
INSERT INTO maillocation (mid, fid, directory) VALUES (1, 1, 'Maildir'), (2, 2, 'mdbox');
INSERT INTO quotalimit (qid, bytes, messages) VALUES (1, 0, 0), (2, 1073741824, 10000), (3, 524288000, 0);
INSERT INTO service_set (ssid, smtp, pop3, imap, sieve) VALUES
    (1, true, true, true, true), (2, false, true, true, true), (3, true, false, true, false);

INSERT INTO domain_data (gid, qid, ssid, tid, domaindir) VALUES
    (70000, 2, 1, 1, '/srv/mail/5/70000'),
    (70001, 1, 3, 1, '/srv/mail/c/70001');
INSERT INTO domain_name (domainname, gid, is_primary) VALUES
    ('example.com', 70000, true),
    ('example.net', 70000, false),          -- alias domain of example.com
    ('vmm.test', 70001, true);

INSERT INTO users (local_part, passwd, name, uid, gid, mid, qid, ssid, tid) VALUES
    ('a.user', '{SHA512-CRYPT}$6$rounds=5000$salt$9zvrT7.ckwo.tuV4jDSGLrM9M5p.hdMUSsBMpcz6ttIa7ftEl4N3pphlc7l3SbMrNSHT.fHCFux8o6rveZzosv', 'A. User', 70002, 70000, 1, NULL, NULL, NULL),
    ('b.user', '{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6', NULL, 70003, 70000, 1, 3, 2, NULL),
    ('postmaster', '$2b$12$ZdpassDDfaW2aQvKdT7y7XKK3aILZrpabBV5u0He//5aC8jyykQGz', NULL, 70004, 70000, 2, NULL, NULL, 2),
    ('c.user', '{BLF-CRYPT}$2b$12$jA8r6Q.AGWXD5pRyLgcJ6hRA3Iw0hHyre76/6hOkm4FRic6lqRnqj', 'C', 70005, 70001, 1, NULL, NULL, NULL);

INSERT INTO alias (gid, address, destination) VALUES
    (70000, 'info', 'a.user@example.com'),
    (70000, 'info', 'B.User@Example.com'),
    (70000, 'list', '%n-owner@lists.example.org'),   -- placeholders are filled in
    (70000, '', 'a.user@example.com'),                -- empty address: never matched
    (70000, 'b.user', 'a.user@example.com');          -- also a mailbox: its forwarding
INSERT INTO catchall (gid, destination) VALUES
    (70001, 'c.user@vmm.test'),
    (70001, '%n@other.example');                      -- cannot be expressed: dropped
INSERT INTO relocated (gid, address, destination) VALUES
    (70001, 'gone', 'gone@newplace.example');

-- A BBS's mail_users table (Postfix and Dovecot query it directly), with the
-- data people have: mixed case, a case twin, an IDN domain as U-label,
-- hashes with and without {SCHEME}, quota_mb = 0 (unlimited), disabled rows.
CREATE TABLE mail_users (
    id       serial PRIMARY KEY,
    email    text NOT NULL UNIQUE,
    password text,
    quota_mb integer NOT NULL DEFAULT 0,
    enabled  boolean NOT NULL DEFAULT true
);

INSERT INTO mail_users (id, email, password, quota_mb, enabled) VALUES
    (1, 'sysop@bbs.example', '{BLF-CRYPT}$2y$10$ZlrDkd3iHr4S1GMPw4Vq5OXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 0, true),
    (2, 'Dave@bbs.example', '{BLF-CRYPT}$2y$10$aaaaaaaaaaaaaaaaaaaaaOXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 250, true),
    (3, 'kim@bbs.example', '$2b$12$bbbbbbbbbbbbbbbbbbbbbOXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 100, true),
    (4, 'Kim@BBS.example', '{BLF-CRYPT}$2y$10$cccccccccccccccccccccOXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 100, true),
    (5, 'banned@bbs.example', '{blf-crypt}$2y$10$dddddddddddddddddddddOXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 50, false),
    (6, 'guest@bbs.example', NULL, 1, true),
    (7, 'anna@bücher.example', '{BLF-CRYPT}$2y$10$eeeeeeeeeeeeeeeeeeeeeOXDlh1BDg0nRUY4BtIlLDUK7oxpnwu.O', 0, true),
    (8, 'otto@xn--bcher-kva.example', '$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc', 4096, true),
    (9, 'legacy@bbs.example', 'X03MO1qnZdYdgyfeuILPmQ==', 10, true),
    (10, 'retro@bbs.example', '{MD5-CRYPT}$1$abcdefgh$0123456789abcdefghijkl', 10, true);   -- refused scheme

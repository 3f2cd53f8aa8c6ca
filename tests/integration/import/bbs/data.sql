-- Rows for the BBS's tables (schema.sql), each exercising one field or
-- quirk.  What the importer must report is in expected-report.tsv, written
-- from this file.  The hosted domain is yourbbs.com (virtual_mailbox_domains.cf).
INSERT INTO users (id, username) VALUES (1, 'sysop'), (2, 'Dave'), (3, 'kim'), (4, 'Kim'), (5, 'banned'),
    (6, 'anna'), (7, 'otto'), (8, 'legacy'), (9, 'retro'), (10, 'archie'), (11, 'renamed'),
    (12, 'o''hara'), (13, 'jürgen'), (14, 'six'), (15, 'weird');

INSERT INTO mail_users (id, user_id, email, mail_password, maildir, quota_mb, enabled) VALUES
-- the proposal's form: {BLF-CRYPT} bcrypt, maildir under /var/mail/vhosts
(1, 1, 'sysop@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/sysop/', 200, true),
-- upper case: Postfix never found it; maildir as the BBS wrote it
(2, 2, 'Dave@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/Dave/', 250, true),
-- a bare bcrypt hash (default_pass_scheme BLF-CRYPT verified it)
(3, 3, 'kim@yourbbs.com', '$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/kim/', 0, true),
-- a case twin of kim
(4, 4, 'Kim@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/Kim/', 100, true),
-- disabled, lower-case scheme name
(5, 5, 'banned@yourbbs.com', '{blf-crypt}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/banned/', 50, false),
-- a domain the BBS does not host: it never received mail
(6, 6, 'anna@bücher.example', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/bücher.example/anna/', 200, true),
-- a bare argon2id hash: BLF-CRYPT could not verify it
(7, 7, 'otto@yourbbs.com', '$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc', '/var/mail/vhosts/yourbbs.com/otto/', 4096, true),
-- no form at all
(8, 8, 'legacy@yourbbs.com', 'X03MO1qnZdYdgyfeuILPmQ==', '/var/mail/vhosts/yourbbs.com/legacy/', 10, true),
-- refused schemes
(9, 9, 'retro@yourbbs.com', '{MD5-CRYPT}$1$abcdefgh$0123456789abcdefghijkl', '/var/mail/vhosts/yourbbs.com/retro/', 10, true),
-- a maildir outside maildir_base (an archive): never given a new one
(10, 10, 'archie@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/srv/archive/mail/archie/', 200, true),
-- a maildir renamed under maildir_base, without the trailing slash: kept exactly
(11, 11, 'renamed@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/old-name.2019', 200, true),
-- logins Dovecot's auth_username_chars refused
(12, 12, 'o''hara@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/o''hara/', 200, true),
(13, 13, 'jürgen@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/jürgen/', 200, true),
-- bare $6$: crypt(3) verified it under BLF-CRYPT too
(14, 14, 'six@yourbbs.com', '$6$saltsalt$ujMKP5sAfQ/V3SToSC9McDx/Ep000u7/5tdyxsgNJbyKREiDB3osrDGBWi4Ur9AOIakHvtR7AWRAjmCi5CChO0', '/var/mail/vhosts/yourbbs.com/six/', 200, true),
-- an address mailroster does not take
(15, 15, 'we ird@yourbbs.com', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', '/var/mail/vhosts/yourbbs.com/weird/', 200, true);

INSERT INTO mail_aliases (source, destination) VALUES
('postmaster@yourbbs.com', 'sysop@yourbbs.com'),
('abuse@yourbbs.com', 'sysop@yourbbs.com,kim@yourbbs.com'),    -- two destinations in one row
('info@yourbbs.com', 'sysop@yourbbs.com'),
('info@yourbbs.com', 'friend@elsewhere.example'),              -- and a second row: outside
('@yourbbs.com', 'sysop@yourbbs.com'),                         -- catch-all
('kim@yourbbs.com', 'kim@elsewhere.example'),                  -- a forward from a mailbox
('Sales@yourbbs.com', 'dave@yourbbs.com'),                     -- upper case: never matched
('old@yourbbs.com', 'x@bad..example');                         -- nothing usable

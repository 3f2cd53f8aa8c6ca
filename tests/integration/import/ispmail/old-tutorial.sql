-- ISP-mail tutorial schema (workaround.org), with the data people have:
-- mixed case, IDN, hashes without {SCHEME}, an alias source that is also a
-- mailbox, a catch-all, a destination that cannot be imported.
CREATE TABLE virtual_domains (
    id   serial PRIMARY KEY,
    name varchar(50) NOT NULL
);
CREATE TABLE virtual_users (
    id        serial PRIMARY KEY,
    domain_id int NOT NULL REFERENCES virtual_domains ON DELETE CASCADE,
    email     varchar(100) NOT NULL UNIQUE,
    password  varchar(150),
    quota     bigint NOT NULL DEFAULT 0
);
CREATE TABLE virtual_aliases (
    id          serial PRIMARY KEY,
    domain_id   int NOT NULL REFERENCES virtual_domains ON DELETE CASCADE,
    source      varchar(100) NOT NULL,
    destination varchar(100) NOT NULL
);

INSERT INTO virtual_domains (id, name) VALUES
    (1, 'example.org'),
    (2, 'Example.NET'),                 -- mixed case: never matched until now
    (3, 'münchen.de'),                  -- U-label: refused
    (4, 'xn--bcher-kva.example');       -- IDN stored as A-label: fine

INSERT INTO virtual_users (id, domain_id, email, password, quota) VALUES
    (1, 1, 'john@example.org', '{BLF-CRYPT}$2y$05$.WedBCNZiwxY1CG3aleIleu6lYjup2CIg0gP4M4YCZsmW7vFl9Ydi', 0),
    (2, 1, 'Dave@example.org', '$6$rounds=5000$saltsalt$Ck1vJ4Tcb0xY3tPVE3dBeK8cUfv7rCsHv1lJmSDtcAjQX3zZ9z3kXW0eq0VqYIe2y1YxUrR3CrSRaBGx4Ytrt/', 5368709120),
    (3, 1, 'max@example.org', '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7', 1048576),
    (4, 1, 'Max@example.org', '$y$j9T$aaaaaaaaaaaaaaaaaaaaaa$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 0),
    (5, 1, 'argon@example.org', '$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA', 0),
    (6, 1, 'sha256@example.org', '$5$saltsalt$qJFxXqTQ2lQO9wQv7NGp6sLDrWt8k0eYXg8z4nLhNG/', 0),
    (7, 1, 'weird@example.org', '5f4dcc3b5aa765d61d8327deb882cf99', 0),
    (8, 1, 'nopw@example.org', NULL, 0),
    (9, 2, 'Sue@Example.NET', '{sha512-crypt}$6$x$D7RXtAvE8SfQHmx6dZOLiGu6CVOVAeHMVB2xs9cMshBEeKC6zWJsrgWY2kcUiSJAA8n6ZGFFpaAbhG5mINmMdg', 10485760),
    (10, 3, 'anna@münchen.de', '{BLF-CRYPT}$2y$05$32yZPjbOQiHz7/S6Yjzmvp54AiTNSYuru7k7x3LuQf7MDapW0fvkY', 0),
    (11, 1, 'a+b@example.org', '{BLF-CRYPT}$2y$05$LUCKBxfsGIFYJ4p5bGiQRDYdxv3eKNbwSXO4CJbhgjl1zb8S62P54', 0),
    (12, 4, 'otto@xn--bcher-kva.example', '$2b$12$uAWQGBQMwLm/dUNt5PaiVvKFAN8prVonUEXGpPi/uWmVFmklXLjqu', 0),
    -- schemes mailroster refuses: imported without a password, reported
    (13, 1, 'md5@example.org', '$1$abcdefgh$0123456789abcdefghijkl', 0),
    (14, 1, 'argon2i@example.org', '$argon2i$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc', 0),
    (15, 1, 'plain@example.org', '{Plain}hunter2', 0),
    (16, 1, 'des@example.org', '{CRYPT}abJnggxhB/yWI', 0);

INSERT INTO virtual_aliases (id, domain_id, source, destination) VALUES
    (1, 1, 'info@example.org', 'john@example.org'),
    (2, 1, 'info@example.org', 'sue@example.net'),
    (3, 2, '@example.net', 'Sue@Example.NET'),                 -- catch-all
    (4, 1, 'john@example.org', 'john@example.org'),            -- alias source that is a mailbox
    (5, 1, 'john@example.org', 'boss@remote.test'),
    (6, 1, 'Sales@example.org', 'dave@example.org'),           -- mixed-case source
    (7, 1, 'bad@example.org', 'x@münchen.de'),                 -- U-label destination only
    (8, 1, 'team@example.org', 'john@example.org'),
    (9, 1, 'team@example.org', 'JOHN@example.org'),            -- the same after lowercasing
    (10, 1, 'team@example.org', 'Dave@Example.org');

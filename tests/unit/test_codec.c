/* test_codec.c - %XX quoting, netstrings, canonical addresses. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "codec.h"
#include "tests.h"

START_TEST(hexq_roundtrip)
{
    struct buf e, d;
    const char raw[] = "a b%c\t\xc3\xa9\x01~";
    buf_init(&e);
    buf_init(&d);
    hexq_encode(&e, raw, sizeof(raw) - 1);
    ck_assert_str_eq(e.data, "a%20b%25c%09%C3%A9%01~");
    ck_assert_int_eq(hexq_decode(&d, e.data, e.len), 0);
    ck_assert_uint_eq(d.len, sizeof(raw) - 1);
    ck_assert_mem_eq(d.data, raw, d.len);
    buf_free(&e);
    buf_free(&d);
}
END_TEST

START_TEST(hexq_decode_cases)
{
    struct buf d;
    buf_init(&d);
    ck_assert_int_eq(hexq_decode(&d, "%4a%4A", 6), 0);
    ck_assert_str_eq(d.data, "JJ");
    buf_reset(&d);
    ck_assert_int_eq(hexq_decode(&d, "abc%", 4), -1);
    buf_reset(&d);
    ck_assert_int_eq(hexq_decode(&d, "abc%4", 5), -1);
    buf_reset(&d);
    ck_assert_int_eq(hexq_decode(&d, "%zz", 3), -1);
    buf_reset(&d);
    ck_assert_int_eq(hexq_decode(&d, "%00", 3), 0);
    ck_assert_uint_eq(d.len, 1);
    buf_free(&d);
}
END_TEST

START_TEST(netstring_parse)
{
    const char *data;
    size_t used, dlen;
    ck_assert_int_eq(ns_parse("5:hello,", 8, 100, &used, &data, &dlen), NS_OK);
    ck_assert_uint_eq(used, 8);
    ck_assert_uint_eq(dlen, 5);
    ck_assert_mem_eq(data, "hello", 5);
    ck_assert_int_eq(ns_parse("0:,", 3, 100, &used, &data, &dlen), NS_OK);
    ck_assert_uint_eq(dlen, 0);
    ck_assert_int_eq(ns_parse("5:hel", 5, 100, &used, &data, &dlen), NS_NEED_MORE);
    ck_assert_int_eq(ns_parse("12", 2, 100, &used, &data, &dlen), NS_NEED_MORE);
    ck_assert_int_eq(ns_parse("5:hello!", 8, 100, &used, &data, &dlen), NS_BAD);
    ck_assert_int_eq(ns_parse(":x,", 3, 100, &used, &data, &dlen), NS_BAD);
    ck_assert_int_eq(ns_parse("x:", 2, 100, &used, &data, &dlen), NS_BAD);
    ck_assert_int_eq(ns_parse("101:", 4, 100, &used, &data, &dlen), NS_TOO_LONG);
    ck_assert_int_eq(ns_parse("99999999999999999999", 20, 100000, &used, &data, &dlen), NS_TOO_LONG);
}
END_TEST

START_TEST(netstring_format)
{
    struct buf b;
    buf_init(&b);
    ns_format(&b, "OK x", 4);
    ck_assert_str_eq(b.data, "4:OK x,");
    /* lengths of 0 and of several digits, after what is in the buffer */
    ns_format(&b, "", 0);
    ck_assert_str_eq(b.data, "4:OK x,0:,");
    char big[12345];
    memset(big, 'v', sizeof(big));
    buf_reset(&b);
    ns_format(&b, big, sizeof(big));
    ck_assert_uint_eq(b.len, 6 + sizeof(big) + 1);
    ck_assert(!memcmp(b.data, "12345:vvv", 9) && b.data[b.len - 1] == ',');
    buf_free(&b);
}
END_TEST

START_TEST(addr_canonical)
{
    struct buf b;
    size_t at;
    buf_init(&b);
    ck_assert_int_eq(addr_canon("Alice@Example.COM", 17, &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "alice@example.com");
    ck_assert_uint_eq(at, 5);
    ck_assert_int_eq(addr_canon("@Example.com", 12, &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "@example.com");
    ck_assert_uint_eq(at, 0);
    /* IDNA2008: U-label to A-label, uppercase folded */
    ck_assert_int_eq(addr_canon("x@M\xc3\xbcnchen.de", 13, &b, &at), ADDR_OK);
    ck_assert_str_eq(b.data, "x@xn--mnchen-3ya.de");
    ck_assert_int_eq(addr_domain_canon("M\xc3\x9cNCHEN.DE", 11, &b), ADDR_OK);
    ck_assert_str_eq(b.data, "xn--mnchen-3ya.de");
    /* what libidn2 would silently drop is an error */
    ck_assert_int_eq(addr_domain_canon("ex\xc2\xad" "ample.com", 13, &b), ADDR_DOMAIN_IGNORABLE);
    ck_assert_int_eq(addr_domain_canon("ex\xe2\x80\x8b" "ample.com", 14, &b), ADDR_DOMAIN_IGNORABLE);
    ck_assert_int_eq(addr_domain_canon("ex_ample.com", 12, &b), ADDR_DOMAIN_BAD);
    ck_assert_int_eq(addr_domain_canon("-a.com", 6, &b), ADDR_DOMAIN_BAD);
    ck_assert_int_eq(addr_domain_canon("a..com", 6, &b), ADDR_DOMAIN_BAD);
    ck_assert_int_eq(addr_domain_canon("a.com.", 6, &b), ADDR_DOMAIN_BAD);
    ck_assert_int_eq(addr_domain_canon("\xff.com", 5, &b), ADDR_DOMAIN_BAD);
    ck_assert_int_eq(addr_canon("nobody", 6, &b, &at), ADDR_NO_AT);
    buf_free(&b);
}
END_TEST

/* the U-label form of a canonical address, for Dovecot's cache flush */
START_TEST(addr_unicode_form)
{
    struct buf b;
    buf_init(&b);
    ck_assert_int_eq(addr_unicode("leser@xn--bcher-kva.example", &b), 0);
    ck_assert_str_eq(b.data, "leser@b\xc3\xbc" "cher.example");
    ck_assert_int_eq(addr_unicode("o'hara@sub.xn--mnchen-3ya.de", &b), 0);
    ck_assert_str_eq(b.data, "o'hara@sub.m\xc3\xbc" "nchen.de");
    ck_assert_int_eq(addr_unicode("alice@example.com", &b), -1);   /* nothing to decode */
    ck_assert_int_eq(addr_unicode("no-at-sign", &b), -1);
    ck_assert_int_eq(addr_unicode("x@xn--", &b), -1);              /* not a valid A-label */
    buf_free(&b);
}
END_TEST

START_TEST(addr_lengths)
{
    struct buf b;
    size_t at;
    char local[80], label[70], dom[300];
    buf_init(&b);
    memset(local, 'a', 65);
    memcpy(local + 65, "@x.org", 7);
    ck_assert_int_eq(addr_canon(local, strlen(local), &b, &at), ADDR_LOCAL_TOO_LONG);
    memset(label, 'b', 64);
    memcpy(label + 64, ".org", 5);
    ck_assert_int_eq(addr_domain_canon(label, strlen(label), &b), ADDR_DOMAIN_BAD);
    /* 254 octets is the most an address may have */
    memset(dom, 0, sizeof(dom));
    for (int i = 0; i < 4; i++)
        strcat(dom, "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.");
    dom[250] = 0; /* 250 octets, ends in a label */
    ck_assert_int_eq(addr_domain_canon(dom, 250, &b), ADDR_OK);
    char addr[320];     /* room for dom (up to 299 octets to the compiler) and the local part */
    snprintf(addr, sizeof(addr), "abcd@%s", dom);
    ck_assert_int_eq(addr_canon(addr, strlen(addr), &b, &at), ADDR_TOO_LONG);
    snprintf(addr, sizeof(addr), "abc@%s", dom);
    ck_assert_int_eq(addr_canon(addr, strlen(addr), &b, &at), ADDR_OK);
    buf_free(&b);
}
END_TEST

START_TEST(addr_local_rules)
{
    ck_assert_int_eq(addr_local_check("alice", 5, "+"), ADDR_OK);
    ck_assert_int_eq(addr_local_check("o'brien", 7, "+"), ADDR_OK);
    ck_assert_int_eq(addr_local_check("", 0, "+"), ADDR_LOCAL_EMPTY);
    ck_assert_int_eq(addr_local_check(".a", 2, "+"), ADDR_LOCAL_BAD_DOT);
    ck_assert_int_eq(addr_local_check("a.", 2, "+"), ADDR_LOCAL_BAD_DOT);
    ck_assert_int_eq(addr_local_check("a..b", 4, "+"), ADDR_LOCAL_BAD_DOT);
    ck_assert_int_eq(addr_local_check("a+b", 3, "+"), ADDR_LOCAL_DELIM);
    ck_assert_int_eq(addr_local_check("a b", 3, "+"), ADDR_LOCAL_BAD_CHAR);
    ck_assert_int_eq(addr_local_check("a,b", 3, "+"), ADDR_LOCAL_BAD_CHAR);
    ck_assert_uint_eq(addr_ext_split("user+ext", 8, "+"), 4);
    ck_assert_uint_eq(addr_ext_split("user-ext+x", 10, "+-"), 4);
    ck_assert_uint_eq(addr_ext_split("+ext", 4, "+"), 4);
    ck_assert_uint_eq(addr_ext_split("user", 4, "+"), 4);
    ck_assert_uint_eq(addr_ext_split("user+x", 6, ""), 6);
}
END_TEST

Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hexq_roundtrip);
    tcase_add_test(tc, hexq_decode_cases);
    tcase_add_test(tc, netstring_parse);
    tcase_add_test(tc, netstring_format);
    tcase_add_test(tc, addr_canonical);
    tcase_add_test(tc, addr_lengths);
    tcase_add_test(tc, addr_unicode_form);
    tcase_add_test(tc, addr_local_rules);
    suite_add_tcase(s, tc);
    return s;
}

/* codec.c - %XX quoting (tcp_table) and netstrings (socketmap). */
#include "config.h"

#include <string.h>

#include "codec.h"

static const char hexdig[] = "0123456789ABCDEF";

static int hexq_plain(unsigned char c) { return c > 0x20 && c < 0x7f && c != '%'; }

/* Both directions write straight into reserved room: these run once per
 * byte of every tcp_table key and value. */
void hexq_encode(struct buf *out, const char *raw, size_t len)
{
    size_t esc = 0;
    char *o;

    for (size_t i = 0; i < len; i++)
        esc += !hexq_plain((unsigned char)raw[i]);
    buf_reserve(out, len + 2 * esc);
    o = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (hexq_plain(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hexdig[c >> 4];
            *o++ = hexdig[c & 15];
        }
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
}

int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hexq_decode(struct buf *out, const char *in, size_t len)
{
    int rc = 0;
    char *o;

    buf_reserve(out, len);
    o = out->data + out->len;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            *o++ = in[i];
            continue;
        }
        int hi = len - i < 3 ? -1 : hex_digit((unsigned char)in[i + 1]);
        int lo = len - i < 3 ? -1 : hex_digit((unsigned char)in[i + 2]);
        if (hi < 0 || lo < 0) {
            rc = -1;    /* what came before stays decoded, as it always did */
            break;
        }
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return rc;
}

enum ns_status ns_parse(const char *in, size_t len, size_t maxlen,
                        size_t *consumed, const char **data, size_t *dlen)
{
    size_t n = 0, i = 0;

    for (; i < len && in[i] >= '0' && in[i] <= '9'; i++) {
        if (i >= 10)
            return NS_TOO_LONG;
        n = n * 10 + (size_t)(in[i] - '0');
        if (n > maxlen)
            return NS_TOO_LONG;
    }
    if (i == len)
        return NS_NEED_MORE;
    if (i == 0 || in[i] != ':')
        return NS_BAD;
    i++;
    if (len - i < n + 1)
        return NS_NEED_MORE;
    if (in[i + n] != ',')
        return NS_BAD;
    *data = in + i;
    *dlen = n;
    *consumed = i + n + 1;
    return NS_OK;
}

void ns_format(struct buf *out, const char *data, size_t len)
{
    char num[24];
    size_t i = sizeof(num), n = len;

    num[--i] = ':';
    do
        num[--i] = (char)('0' + n % 10);
    while ((n /= 10) > 0);
    buf_add(out, num + i, sizeof(num) - i);
    buf_add(out, data, len);
    buf_addc(out, ',');
}

void tabesc_encode(struct buf *out, const char *raw, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        char e;
        switch (raw[i]) {
        case '\001': e = '1'; break;
        case '\t': e = 't'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        default: continue;
        }
        buf_add(out, raw + start, i - start);
        buf_addc(out, '\001');
        buf_addc(out, e);
        start = i + 1;
    }
    buf_add(out, raw + start, len - start);
}

long tabesc_decode(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\001') {
            s[o++] = s[i];
            continue;
        }
        if (++i == len)
            return -1;
        switch (s[i]) {
        case '1': s[o++] = '\001'; break;
        case 't': s[o++] = '\t'; break;
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        default: return -1;
        }
    }
    return (long)o;
}

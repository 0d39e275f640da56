/* sftp_proto.c — SFTP v3 packets: big-endian integers, length-prefixed
 * strings, ATTRS, and framing of the byte stream. See sftp_proto.h. */
#include "sftp_proto.h"

#include <string.h>

void sftp_put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};
	buf_add(b, x, 4);
}

void sftp_put_u64(struct buf *b, uint64_t v)
{
	sftp_put_u32(b, (uint32_t)(v >> 32));
	sftp_put_u32(b, (uint32_t)v);
}

void sftp_put_str(struct buf *b, const void *p, size_t n)
{
	sftp_put_u32(b, (uint32_t)n);
	if (n)
		buf_add(b, p, n);
}

void sftp_put_cstr(struct buf *b, const char *s)
{
	sftp_put_str(b, s, strlen(s));
}

void sftp_begin(struct buf *b, uint8_t type, uint32_t id, bool has_id)
{
	sftp_put_u32(b, 0);
	buf_add(b, &type, 1);
	if (has_id)
		sftp_put_u32(b, id);
}

void sftp_end(struct buf *b, size_t start)
{
	uint32_t n = (uint32_t)(b->len - start - 4);
	uint8_t *p = (uint8_t *)b->data + start;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
}

void sftp_put_attrs(struct buf *b, const struct sftp_attrs *a)
{
	uint32_t f = a->flags & ~SSH_FILEXFER_ATTR_EXTENDED;
	sftp_put_u32(b, f);
	if (f & SSH_FILEXFER_ATTR_SIZE)
		sftp_put_u64(b, a->size);
	if (f & SSH_FILEXFER_ATTR_UIDGID) {
		sftp_put_u32(b, a->uid);
		sftp_put_u32(b, a->gid);
	}
	if (f & SSH_FILEXFER_ATTR_PERMISSIONS)
		sftp_put_u32(b, a->perm);
	if (f & SSH_FILEXFER_ATTR_ACMODTIME) {
		sftp_put_u32(b, a->atime);
		sftp_put_u32(b, a->mtime);
	}
}

void sftp_dec_init(struct sftp_dec *d, const void *p, size_t n)
{
	d->p = p;
	d->left = n;
	d->bad = false;
}

static bool need(struct sftp_dec *d, size_t n)
{
	if (d->bad || d->left < n) {
		d->bad = true;
		return false;
	}
	return true;
}

bool sftp_get_u8(struct sftp_dec *d, uint8_t *v)
{
	if (!need(d, 1))
		return false;
	*v = d->p[0];
	d->p++;
	d->left--;
	return true;
}

bool sftp_get_u32(struct sftp_dec *d, uint32_t *v)
{
	if (!need(d, 4))
		return false;
	*v = (uint32_t)d->p[0] << 24 | (uint32_t)d->p[1] << 16 |
	     (uint32_t)d->p[2] << 8 | d->p[3];
	d->p += 4;
	d->left -= 4;
	return true;
}

bool sftp_get_u64(struct sftp_dec *d, uint64_t *v)
{
	uint32_t hi, lo;
	if (!sftp_get_u32(d, &hi) || !sftp_get_u32(d, &lo))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

bool sftp_get_str(struct sftp_dec *d, const char **p, size_t *n)
{
	uint32_t len;
	if (!sftp_get_u32(d, &len) || !need(d, len))
		return false;
	*p = (const char *)d->p;
	*n = len;
	d->p += len;
	d->left -= len;
	return true;
}

bool sftp_get_attrs(struct sftp_dec *d, struct sftp_attrs *a)
{
	memset(a, 0, sizeof *a);
	if (!sftp_get_u32(d, &a->flags))
		return false;
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		sftp_get_u64(d, &a->size);
	if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
		sftp_get_u32(d, &a->uid);
		sftp_get_u32(d, &a->gid);
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		sftp_get_u32(d, &a->perm);
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		sftp_get_u32(d, &a->atime);
		sftp_get_u32(d, &a->mtime);
	}
	if (a->flags & SSH_FILEXFER_ATTR_EXTENDED) {
		uint32_t n = 0;
		sftp_get_u32(d, &n);
		for (uint32_t i = 0; i < n && !d->bad; i++) {
			const char *s;
			size_t l;
			sftp_get_str(d, &s, &l);
			sftp_get_str(d, &s, &l);
		}
	}
	a->flags &= ~SSH_FILEXFER_ATTR_EXTENDED;
	return !d->bad;
}

int sftp_frame(const void *buf, size_t n, size_t max, size_t *total)
{
	if (n < 4)
		return 0;
	const uint8_t *p = buf;
	uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	if (len == 0 || len > max)
		return -1;
	*total = (size_t)len + 4;
	return n - 4 < len ? 0 : 1;
}

bool sftp_reply_head(struct sftp_dec *d, uint8_t *type, uint32_t *id)
{
	*id = 0;
	if (!sftp_get_u8(d, type))
		return false;
	if (*type == SSH_FXP_VERSION)
		return true;
	return sftp_get_u32(d, id);
}

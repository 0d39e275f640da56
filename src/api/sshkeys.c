/* sshkeys.c — see sshkeys.h. */
#include "sshkeys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "errmap.h"
#include "log.h"

int api_list_keys(struct api *a, struct key_list *out)
{
	size_t cap = 0;
	long offset = 0;
	out->v = NULL;
	out->n = 0;
	for (int page = 0; page < API_MAX_PAGES; page++) {
		char path[96];
		snprintf(path, sizeof path, "/ssh_keys/?offset=%ld&limit=%d",
			 offset, API_PAGE_SIZE);
		struct http_resp r;
		http_resp_init(&r);
		json_object *o = NULL;
		int rc = 0;
		if (!http_call(a->http, "GET", path, NULL, "GET /ssh_keys", &r))
			rc = api_fail("GET /ssh_keys", path, &r);
		else if (!(o = api_parse_object("GET /ssh_keys", &r)))
			rc = -EIO;
		http_resp_free(&r);
		if (rc) {
			key_list_free(out);
			return rc;
		}
		json_object *data = jx_arr(o, "data");
		struct num total = jx_num(o, "total_count");
		size_t len = data ? json_object_array_length(data) : 0;
		if (out->n + len > cap) {
			cap = (out->n + len) * 2;
			out->v = xrealloc(out->v, cap * sizeof *out->v);
		}
		for (size_t i = 0; i < len; i++) {
			json_object *it = json_object_array_get_idx(data, i);
			struct ssh_key *k = &out->v[out->n];
			memset(k, 0, sizeof *k);
			k->id = jx_dup(it, "id");
			k->name = jx_dup(it, "name");
			k->public_key = jx_dup(it, "publicKey");
			json_object *p;
			k->primary =
			    json_object_object_get_ex(it, "isPrimary", &p) &&
			    json_object_get_boolean(p);
			if (k->id && k->public_key)
				out->n++;
			else {
				free(k->id);
				free(k->name);
				free(k->public_key);
			}
		}
		json_object_put(o);
		offset += (long)len;
		if (len == 0 || !total.set || total.d <= (double)offset)
			return 0;
	}
	return 0;
}

void key_list_free(struct key_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].id);
		free(l->v[i].name);
		free(l->v[i].public_key);
		free(l->v[i].dir);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int call(struct api *a, const char *method, const char *path,
		json_object *body, const char *endpoint, const char *op,
		const char *log_path)
{
	const char *text =
	    body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
		 : NULL;
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	if (!http_call(a->http, method, path, text, endpoint, &r))
		rc = api_fail(op, log_path, &r);
	http_resp_free(&r);
	json_object_put(body);
	return rc;
}

int api_add_key(struct api *a, const char *name, const char *public_key,
		const char *op, const char *path)
{
	json_object *b = json_object_new_object();
	json_object_object_add(b, "name", json_object_new_string(name));
	json_object_object_add(b, "publicKey",
			       json_object_new_string(public_key));
	return call(a, "POST", "/ssh_keys/", b, "POST /ssh_keys", op, path);
}

static int by_id(struct api *a, const char *method, const char *id,
		 json_object *body, const char *endpoint, const char *op,
		 const char *log_path)
{
	struct buf p;
	buf_init(&p);
	buf_adds(&p, "/ssh_keys/");
	http_escape_into(&p, id);
	int rc = call(a, method, p.data, body, endpoint, op, log_path);
	buf_free(&p);
	return rc;
}

int api_delete_key(struct api *a, const char *id, const char *op,
		   const char *path)
{
	return by_id(a, "DELETE", id, NULL, "DELETE /ssh_keys/{id}", op, path);
}

int api_primary_key(struct api *a, const char *id, const char *op,
		    const char *path)
{
	json_object *b = json_object_new_object();
	json_object_object_add(b, "isPrimary", json_object_new_boolean(1));
	return by_id(a, "PATCH", id, b, "PATCH /ssh_keys/{id}", op, path);
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes n base64 characters (padding allowed at the end): the length,
 * or 0 when they are not base64 or do not fit. */
static size_t b64_decode(const char *s, size_t n, unsigned char *out,
			 size_t cap)
{
	size_t len = 0;
	unsigned acc = 0;
	int bits = 0;
	while (n && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);
		if (v < 0)
			return 0;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (len == cap)
				return 0;
			out[len++] = (unsigned char)(acc >> bits);
		}
	}
	return len;
}

size_t pubkey_blob(const char *text, unsigned char *out, size_t cap)
{
	const char *p = text + strspn(text, " \t");
	size_t tl = strcspn(p, " \t\r\n");
	if (!tl || (p[tl] != ' ' && p[tl] != '\t'))
		return 0;
	const char *b = p + tl + strspn(p + tl, " \t");
	size_t bl = strcspn(b, " \t\r\n");
	size_t n = b64_decode(b, bl, out, cap);
	/* The blob starts with its type as an SSH string. */
	if (n < 4 + tl || out[0] || out[1] || out[2] != (tl >> 8 & 0xff) ||
	    out[3] != (tl & 0xff) || memcmp(out + 4, p, tl))
		return 0;
	return n;
}

const char *pubkey_problem(const char *text, size_t len)
{
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (!len)
		return "the file is empty: write a public key "
		       "(cp ~/.ssh/id_ed25519.pub ssh_keys/NAME)";
	if (len >= 10 && !strncmp(text, "-----BEGIN", 10))
		return "that is a private key: write the .pub file";
	if (memchr(text, '\n', len) || memchr(text, '\0', len))
		return "one public key a file, on one line";
	char *s = xstrndup(text, len);
	unsigned char blob[PUBKEY_BLOB_MAX];
	size_t n = pubkey_blob(s, blob, sizeof blob);
	free(s);
	return n ? NULL
		 : "not an OpenSSH public key line (TYPE BASE64 [comment], "
		   "as in a .pub file)";
}

/* sshkeys.h — the account's SSH public keys (GET, POST /ssh_keys/; DELETE,
 * PATCH /ssh_keys/{id}), and the comparison of two public keys by their
 * key blob (the base64 field), never by their comment. Each call returns 0
 * or -errno, having logged the reason (errmap.h). */
#ifndef PRIMEFS_SSHKEYS_H
#define PRIMEFS_SSHKEYS_H

#include <stdbool.h>
#include <stddef.h>

struct api;

struct ssh_key {
	char *id, *name;
	char *public_key; /* one line, as the API holds it */
	char *dir;	  /* its file name in ssh_keys/ (snapindex.c) */
	bool primary;
};

struct key_list {
	struct ssh_key *v;
	size_t n;
};

int api_list_keys(struct api *a, struct key_list *out);
void key_list_free(struct key_list *l);
/* POST /ssh_keys/ {name, publicKey}: `op` and `path` name it in the log. */
int api_add_key(struct api *a, const char *name, const char *public_key,
		const char *op, const char *path);
int api_delete_key(struct api *a, const char *id, const char *op,
		   const char *path);
/* PATCH /ssh_keys/{id} {"isPrimary": true}. */
int api_primary_key(struct api *a, const char *id, const char *op,
		    const char *path);

/* The key blob of a public key line ("TYPE BASE64 [comment]"), decoded
 * into out (at most cap bytes): its length, or 0 when the text is no
 * public key. */
size_t pubkey_blob(const char *text, unsigned char *out, size_t cap);
/* Why text is not one public key line, or NULL when it is. */
const char *pubkey_problem(const char *text, size_t len);

#define PUBKEY_BLOB_MAX 4096

#endif

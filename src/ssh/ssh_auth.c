/* ssh_auth.c — public key authentication on a session's I/O thread: the
 * ssh agent's keys, then the key file, and a log line that says what was
 * tried — and, on libssh2 < 1.11, that an RSA key is refused because that
 * libssh2 signs RSA with SHA-1 only. */
#include "ssh_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The key type of a private key file ("ssh-rsa", "ssh-ed25519", ...), for
 * the log line: from its .pub file (ssh-keygen writes one beside every key),
 * else from a PEM header. An OpenSSH-format key without its .pub file is
 * "unknown", which counts as maybe RSA (as does a PKCS#8 one). */
static void keyfile_type(const char *path, char *out, size_t outlen)
{
	snprintf(out, outlen, "unknown");
	struct buf pub;
	buf_init(&pub);
	buf_printf(&pub, "%s.pub", path);
	FILE *f = fopen(pub.data, "re");
	buf_free(&pub);
	if (f) {
		char word[64];
		bool ok = fscanf(f, "%63s", word) == 1;
		fclose(f);
		if (ok) {
			snprintf(out, outlen, "%s", word);
			return;
		}
	}
	f = fopen(path, "re");
	if (!f)
		return;
	char line[128];
	if (fgets(line, sizeof line, f)) {
		if (strstr(line, "-----BEGIN RSA PRIVATE KEY-----"))
			snprintf(out, outlen, "ssh-rsa");
		else if (strstr(line, "-----BEGIN EC PRIVATE KEY-----"))
			snprintf(out, outlen, "ecdsa");
		else if (strstr(line, "-----BEGIN DSA PRIVATE KEY-----"))
			snprintf(out, outlen, "ssh-dss");
	}
	fclose(f);
}

/* An agent's key blob starts with its type as an SSH string. */
static bool blob_is_rsa(const unsigned char *blob, size_t len)
{
	static const char rsa[] = "\0\0\0\7ssh-rsa";
	return len >= sizeof rsa - 1 && !memcmp(blob, rsa, sizeof rsa - 1);
}

/* libssh2 before 1.11 signs RSA with SHA-1 only. */
static bool rsa_sha1_only(void)
{
	return libssh2_version(0x010b00) == NULL;
}

void ssh_key_type(const char *path, char *out, size_t outlen)
{
	keyfile_type(path, out, outlen);
}

bool ssh_rsa_refused(void)
{
	return rsa_sha1_only();
}

void ssh_agent_keys(void (*fn)(void *arg, const unsigned char *blob,
			       size_t len),
		    void *arg)
{
	const char *sock = getenv("SSH_AUTH_SOCK");
	if (!sock || !*sock)
		return;
	LIBSSH2_SESSION *ss = libssh2_session_init();
	LIBSSH2_AGENT *agent = ss ? libssh2_agent_init(ss) : NULL;
	if (agent && !libssh2_agent_connect(agent)) {
		if (!libssh2_agent_list_identities(agent)) {
			struct libssh2_agent_publickey *id = NULL, *prev = NULL;
			while (libssh2_agent_get_identity(agent, &id, prev) ==
			       0) {
				fn(arg, id->blob, id->blob_len);
				prev = id;
			}
		}
		libssh2_agent_disconnect(agent);
	}
	if (agent)
		libssh2_agent_free(agent);
	if (ss)
		libssh2_session_free(ss);
}

static bool timeout_error(int r)
{
	return r == LIBSSH2_ERROR_TIMEOUT || r == LIBSSH2_ERROR_SOCKET_TIMEOUT;
}

/* 0 authenticated; 1 refused (tried keys are listed in *tried); < 0 a
 * failure that ends the attempt. The agent is driven in blocking mode with
 * the session timeout: libssh2 1.10's agent code does not resume cleanly
 * after EAGAIN, and the agent is a local socket anyway. */
static int auth_agent(struct sess *s, double deadline, struct buf *tried,
		      bool *rsa_refused)
{
	const char *sock = getenv("SSH_AUTH_SOCK");
	if (!sock || !*sock)
		return 1;
	double left = deadline - now_monotonic();
	if (left <= 0)
		return -ETIMEDOUT;
	libssh2_session_set_blocking(s->ss, 1);
	libssh2_session_set_timeout(s->ss, (long)(left * 1000) + 1);
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->ss);
	int rc = 1, n = 0;
	if (!agent || libssh2_agent_connect(agent) ||
	    libssh2_agent_list_identities(agent)) {
		buf_printf(tried, "%sagent at %s (unusable: %s)",
			   tried->len ? ", " : "", sock, sess_last_error(s));
	} else {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			prev = id;
			n++;
			int r = libssh2_agent_userauth(agent, s->user, id);
			if (r == 0) {
				rc = 0;
				break;
			}
			if (blob_is_rsa(id->blob, id->blob_len))
				*rsa_refused = true;
			if (timeout_error(r)) {
				rc = -ETIMEDOUT;
				break;
			}
			if (r != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
			    r != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED &&
			    r != LIBSSH2_ERROR_AGENT_PROTOCOL) {
				rc = -EIO;
				break;
			}
		}
		if (rc)
			buf_printf(tried, "%sagent (%d key%s)",
				   tried->len ? ", " : "", n,
				   n == 1 ? "" : "s");
		libssh2_agent_disconnect(agent);
	}
	if (agent)
		libssh2_agent_free(agent);
	libssh2_session_set_blocking(s->ss, 0);
	libssh2_session_set_timeout(s->ss, (long)(s->pool->timeout * 1000));
	return rc;
}

static int auth_file(struct sess *s, const char *path, double deadline,
		     struct buf *tried, bool *rsa_refused)
{
	char type[64];
	keyfile_type(path, type, sizeof type);
	int r;
	while ((r = libssh2_userauth_publickey_fromfile_ex(
		    s->ss, s->user, (unsigned)strlen(s->user), NULL, path,
		    NULL)) == LIBSSH2_ERROR_EAGAIN) {
		int w = sess_sock_wait(s, sess_lib_events(s), deadline);
		if (w)
			return w;
	}
	if (r == 0)
		return 0;
	buf_printf(tried, "%skey %s (%s)", tried->len ? ", " : "", path, type);
	if (r == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    r == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		/* A type we could not read (PKCS#8) may be RSA too: say so
		 * rather than nothing. */
		if (!strcmp(type, "ssh-rsa") || !strcmp(type, "unknown"))
			*rsa_refused = true;
		return 1;
	}
	if (timeout_error(r))
		return -ETIMEDOUT;
	if (r == LIBSSH2_ERROR_FILE || r == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED ||
	    r == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
		buf_printf(tried,
			   " unusable: %s (an encrypted key needs the "
			   "ssh agent)",
			   sess_last_error(s));
		return 1;
	}
	return -EIO;
}

int sess_authenticate(struct sess *s)
{
	const struct ssh_pool *p = s->pool;
	double deadline = now_monotonic() + p->timeout;
	struct buf tried;
	buf_init(&tried);
	bool rsa = false;
	int r = 1;
	if (!p->key_explicit)
		r = auth_agent(s, deadline, &tried, &rsa);
	if (r == 1 && p->key_path &&
	    (p->key_explicit || access(p->key_path, R_OK) == 0))
		r = auth_file(s, p->key_path, deadline, &tried, &rsa);
	int rc = 0;
	if (r == -ETIMEDOUT) {
		plog("ssh", s->key,
		     "authentication as %s on %s port %d timed out after %gs",
		     s->user, s->host, s->port, p->timeout);
		rc = -EHOSTUNREACH;
	} else if (r == -ECANCELED) {
		rc = -ECANCELED;
	} else if (r < 0) {
		plog("ssh", s->key, "authentication as %s on %s port %d: %s",
		     s->user, s->host, s->port, sess_last_error(s));
		rc = -EIO;
	} else if (r == 1) {
		if (!tried.len)
			buf_printf(&tried,
				   "nothing: no ssh agent, and key %s "
				   "is not readable",
				   p->key_path ? p->key_path : "(none)");
		if (rsa && rsa_sha1_only())
			plog("ssh", s->key,
			     "authentication as %s on %s port %d refused "
			     "(tried %s): an RSA key was refused: libssh2 %s "
			     "signs RSA only with SHA-1 (ssh-rsa), which "
			     "OpenSSH >= 8.8 refuses; use an ed25519 key "
			     "(ssh-keygen -t ed25519) or libssh2 >= 1.11 (or "
			     "the key is not in the pod's authorized_keys)",
			     s->user, s->host, s->port, tried.data,
			     libssh2_version(0));
		else
			plog("ssh", s->key,
			     "authentication as %s on %s port %d refused "
			     "(tried %s)",
			     s->user, s->host, s->port, tried.data);
		rc = -EACCES;
	}
	buf_free(&tried);
	return rc;
}

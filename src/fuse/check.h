/* check.h — primefs --check: the diagnosis a new user runs first. One line
 * per check, "ok" or what to do: the API key (found, and accepted: one API
 * call), the team, the SSH key (there, and of a type this libssh2 can use
 * with current OpenSSH), the state directory (the user's, writable by no
 * one else), FUSE (/dev/fuse, fusermount3). Nothing is mounted. */
#ifndef PRIMEFS_CHECK_H
#define PRIMEFS_CHECK_H

struct check_opts {
	const char *cafile, *key_file, *ssh_key; /* absolute, or NULL */
	const char *state;			 /* absolute */
	double timeout;				 /* for the API call */
};

/* The exit status: 0 when every check is ok, else 1. */
int check_run(const struct check_opts *o);

#endif

/* collect_int.h — private to collect.c (the lists and the files kept) and
 * collect_copy.c (bringing them back over SFTP). */
#ifndef PRIMEFS_COLLECT_INT_H
#define PRIMEFS_COLLECT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "collect.h"

struct collect {
	struct collect_opts o;
	int list_fd;	    /* collect/ */
	int files_fd;	    /* files/ */
	int tmp_fd;	    /* files/.tmp/ */
	pthread_mutex_t mu; /* the lists' files (local, small) */
	unsigned long tmp_seq;
	/* Under mu: pods brought back in this mount, so that a termination
	 * retried (the API failed) does not copy it all again. */
	char **done;
	size_t n_done;
	atomic_bool stopping; /* collect_stop: every run ends now */
};

/* The pod's list as collect_parse gives it (none: n == 0). */
void collect_list(struct collect *c, const char *key, struct strlist *out);
/* Marks the pod with this id brought back: whether it was already. */
bool collect_mark_done(struct collect *c, const char *id);
/* The name of a new temporary file in files/.tmp (malloc'd). */
char *collect_tmp_name(struct collect *c, const char *id);

#endif

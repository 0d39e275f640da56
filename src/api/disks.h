/* disks.h — the account's disks and where they can be made (DESIGN.md "The
 * account: disks, SSH keys, nodes"): GET /disks/ (every page),
 * GET /availability/disks (every page), POST /disks/ and DELETE
 * /disks/{id}. A disk is kept as a struct pod (model.h): the API's disk has
 * a pod's id, name, status, createdAt and priceHr fields, so naming,
 * lookups, cost and the cache's own changes are the pods' own; what only a
 * disk has (size, the pods it is attached to) is read from its JSON. A
 * disk offer is kept as a struct offer whose gpu_type is DISK_OFFER_TYPE,
 * its price the spec's pricePerUnit (USD per GB-hour) and disk.max its
 * largest size. Each returns 0 or -errno, having logged the reason. */
#ifndef PRIMEFS_DISKS_H
#define PRIMEFS_DISKS_H

#include "api.h"

/* The one "GPU type" every disk offer has, so that the offers' own naming
 * and index serve disk_offers/. */
#define DISK_OFFER_TYPE "disk"

int disk_offer_parse(json_object *o, struct offer *out);
int api_list_disks(struct api *a, struct pod_list *out);
int api_list_disk_offers(struct api *a, struct offer_list *out);
/* GET /availability/gpus filtered by the API's `disks` (an array of disk
 * ids): the offers where those disks can attach. */
int api_list_offers_for_disks(struct api *a, json_object *ids,
			      struct offer_list *out);

/* POST /disks/ of `size` GB named `name` from offer `o`: 0 and the new
 * disk in *out (parsed from the answer), or -errno. */
int api_create_disk(struct api *a, const char *name, long size,
		    const struct offer *o, struct pod *out, const char *path);
/* DELETE /disks/{id}: 0 (also when it was gone already), or -errno. */
int api_delete_disk(struct api *a, const char *id, const char *path);

/* A disk's size in GB (unset when unknown), and the ids of the pods it is
 * attached to, from its JSON. */
struct num disk_size(const struct pod *d);
void disk_pod_ids(const struct pod *d, struct strlist *out);

#endif

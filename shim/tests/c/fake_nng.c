/*
 * A stand-in for NanoNNG's core (src/core/message.c and aio.c) with the
 * same function names and signatures: just enough for the shim's link
 * test. Messages are reference counted; an aio has a message slot, a
 * result and a done flag. Calls inside this file are not wrapped, as in
 * NanoNNG.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct nni_msg {
	int     refs;
	uint8_t header[2];
	size_t  header_len;
} nni_msg;

typedef void (*nni_cb)(void *);
typedef struct nni_aio {
	nni_msg *msg;
	int      result;
	nni_cb   cb;
	void    *arg;
} nni_aio;
typedef void (*nni_aio_cancel_fn)(nni_aio *, void *, int);

int
nni_msg_alloc(nni_msg **mp, size_t sz)
{
	(void) sz;
	*mp = calloc(1, sizeof(nni_msg));
	(*mp)->refs = 1;
	return 0;
}

void
nni_msg_free(nni_msg *m)
{
	if (m != NULL && --m->refs == 0) {
		free(m);
	}
}

void
nni_msg_clone(nni_msg *m)
{
	m->refs++;
}

int
nni_msg_dup(nni_msg **dup, const nni_msg *src)
{
	nni_msg_alloc(dup, 0);
	memcpy((*dup)->header, src->header, sizeof src->header);
	(*dup)->header_len = src->header_len;
	return 0;
}

nni_msg *
nni_msg_unique(nni_msg *m)
{
	nni_msg *m2;
	if (m->refs == 1) {
		return m;
	}
	nni_msg_dup(&m2, m);
	nni_msg_free(m);
	return m2;
}

nni_msg *
nni_msg_pull_up(nni_msg *m)
{
	return m;
}

/* Not NanoNNG: lets the test program give a message its packet type, as
 * NanoNNG's encoder writes the fixed header. */
void
fake_set_header(nni_msg *m, uint8_t first_byte)
{
	m->header[0]  = first_byte;
	m->header_len = 2;
}

bool
nni_msg_shared(nni_msg *m)
{
	return m->refs > 1;
}

size_t
nni_msg_header_len(const nni_msg *m)
{
	return m->header_len;
}

void *
nni_msg_header(nni_msg *m)
{
	return m->header;
}

void *
nni_msg_get_proto_data(nni_msg *m)
{
	(void) m;
	return NULL;
}

int
nni_mqtt_msg_get_packet_type(nni_msg *m)
{
	(void) m;
	return 0;
}

void
nni_aio_init(nni_aio *aio, nni_cb cb, void *arg)
{
	memset(aio, 0, sizeof *aio);
	aio->cb  = cb;
	aio->arg = arg;
}

void
nni_aio_fini(nni_aio *aio)
{
	(void) aio;
}

int
nni_aio_alloc(nni_aio **aio, nni_cb cb, void *arg)
{
	*aio = malloc(sizeof(nni_aio));
	nni_aio_init(*aio, cb, arg);
	return 0;
}

void
nni_aio_free(nni_aio *aio)
{
	nni_aio_fini(aio);
	free(aio);
}

void
nni_aio_reap(nni_aio *aio)
{
	nni_aio_free(aio);
}

void
nni_aio_set_msg(nni_aio *aio, nni_msg *m)
{
	aio->msg = m;
}

nni_msg *
nni_aio_get_msg(nni_aio *aio)
{
	return aio->msg;
}

int
nni_aio_begin(nni_aio *aio)
{
	aio->result = 0;
	return 0;
}

int
nni_aio_schedule(nni_aio *aio, nni_aio_cancel_fn fn, void *arg)
{
	(void) aio;
	(void) fn;
	(void) arg;
	return 0;
}

void
nni_aio_finish(nni_aio *aio, int rv, size_t count)
{
	(void) count;
	aio->result = rv;
	if (aio->cb != NULL) {
		aio->cb(aio->arg);
	}
}

void
nni_aio_finish_sync(nni_aio *aio, int rv, size_t count)
{
	nni_aio_finish(aio, rv, count);
}

void
nni_aio_finish_error(nni_aio *aio, int rv)
{
	nni_aio_finish(aio, rv, 0);
}

void
nni_aio_finish_msg(nni_aio *aio, nni_msg *m)
{
	aio->msg = m;
	nni_aio_finish(aio, 0, 0);
}

void
nni_aio_completions_add(void **clp, nni_aio *aio, int rv, size_t count)
{
	(void) clp;
	nni_aio_finish(aio, rv, count);
}

void
nni_aio_wait(nni_aio *aio)
{
	(void) aio;
}

void
nni_aio_abort(nni_aio *aio, int rv)
{
	(void) aio;
	(void) rv;
}

void
nni_aio_close(nni_aio *aio)
{
	(void) aio;
}

void
nni_aio_stop(nni_aio *aio)
{
	(void) aio;
}

void
nni_aio_set_timeout(nni_aio *aio, int32_t ms)
{
	(void) aio;
	(void) ms;
}

void
nni_aio_set_expire(nni_aio *aio, uint64_t t)
{
	(void) aio;
	(void) t;
}

/*
 * pq_load.h: libpq, loaded the first time a PostgreSQL registry is opened.
 *
 * Linked, libpq and what it pulls in (Kerberos, LDAP, GnuTLS) cost every
 * process several milliseconds of start-up, a plain CGI request above all,
 * though most registries are SQLite files. So the binaries do not link it:
 * registry_pg.c calls it through the table below, which pq_load() fills.
 * Only registry_pg.c and pq_load.c include this header.
 */
#ifndef USERREG_PQ_LOAD_H
#define USERREG_PQ_LOAD_H

#include <stddef.h>

#include <libpq-fe.h>

/* The soname of Debian's libpq5. */
#define PQ_LOAD_SONAME "libpq.so.5"

/* Every libpq function registry_pg.c calls. */
#define PQ_LOAD_FUNCTIONS(X) \
	X(PQclear) X(PQcmdStatus) X(PQconnectPoll) X(PQconnectStartParams) \
	X(PQconninfoFree) X(PQconninfoParse) X(PQconsumeInput) X(PQdb) \
	X(PQerrorMessage) X(PQfinish) X(PQflush) X(PQfreemem) \
	X(PQgetResult) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQhost) \
	X(PQisBusy) X(PQnfields) X(PQntuples) X(PQresultErrorField) \
	X(PQresultErrorMessage) X(PQresultStatus) X(PQsendPrepare) \
	X(PQsendQuery) X(PQsendQueryPrepared) X(PQsetNoticeProcessor) \
	X(PQsetnonblocking) X(PQsocket) X(PQstatus) X(PQtransactionStatus) \
	X(PQunescapeBytea)

/* Each member has the type of libpq's own declaration. */
#define PQ_LOAD_MEMBER(name) __typeof__(name) *name;
struct pq_api {
	PQ_LOAD_FUNCTIONS(PQ_LOAD_MEMBER)
};
#undef PQ_LOAD_MEMBER

extern struct pq_api pq_api;

/*
 * Loads libpq once per process. Returns 0, or -1 with why (a sentence
 * naming the package to install) in errmsg.
 */
int pq_load(char *errmsg, size_t errmsg_size);

/* The same from another library file: for the tests. */
int pq_load_from(const char *soname, char *errmsg, size_t errmsg_size);

/* From here on, a call of PQxxx() goes through the table. */
#ifndef PQ_LOAD_NO_MACROS
#define PQclear (*pq_api.PQclear)
#define PQcmdStatus (*pq_api.PQcmdStatus)
#define PQconnectPoll (*pq_api.PQconnectPoll)
#define PQconnectStartParams (*pq_api.PQconnectStartParams)
#define PQconninfoFree (*pq_api.PQconninfoFree)
#define PQconninfoParse (*pq_api.PQconninfoParse)
#define PQconsumeInput (*pq_api.PQconsumeInput)
#define PQdb (*pq_api.PQdb)
#define PQerrorMessage (*pq_api.PQerrorMessage)
#define PQfinish (*pq_api.PQfinish)
#define PQflush (*pq_api.PQflush)
#define PQfreemem (*pq_api.PQfreemem)
#define PQgetResult (*pq_api.PQgetResult)
#define PQgetisnull (*pq_api.PQgetisnull)
#define PQgetlength (*pq_api.PQgetlength)
#define PQgetvalue (*pq_api.PQgetvalue)
#define PQhost (*pq_api.PQhost)
#define PQisBusy (*pq_api.PQisBusy)
#define PQnfields (*pq_api.PQnfields)
#define PQntuples (*pq_api.PQntuples)
#define PQresultErrorField (*pq_api.PQresultErrorField)
#define PQresultErrorMessage (*pq_api.PQresultErrorMessage)
#define PQresultStatus (*pq_api.PQresultStatus)
#define PQsendPrepare (*pq_api.PQsendPrepare)
#define PQsendQuery (*pq_api.PQsendQuery)
#define PQsendQueryPrepared (*pq_api.PQsendQueryPrepared)
#define PQsetNoticeProcessor (*pq_api.PQsetNoticeProcessor)
#define PQsetnonblocking (*pq_api.PQsetnonblocking)
#define PQsocket (*pq_api.PQsocket)
#define PQstatus (*pq_api.PQstatus)
#define PQtransactionStatus (*pq_api.PQtransactionStatus)
#define PQunescapeBytea (*pq_api.PQunescapeBytea)
#endif

#endif

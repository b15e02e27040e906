/* A streaming CSV reader for corpora (senator tweets, BABE news sentences): RFC 4180 quoting
 * ("" inside a quoted field, delimiters and line breaks allowed inside quotes), LF or CRLF
 * records, a UTF-8 byte-order mark skipped, the delimiter given or detected from the header
 * line (',' ';' or TAB, whichever occurs most outside quotes).
 *
 * Unlike eval/csv.c (small questionnaire files, all-or-nothing), this reader is meant for
 * long, messy inputs: a malformed record is reported with its file and line and the reader
 * carries on at the next line, so the caller can count the bad record and go on. A quote in
 * the middle of an unquoted field is taken literally (as Python's csv module does); a quoted
 * field followed by anything but a delimiter or line end, and a quoted field still open at the
 * end of the file, are errors. */
#ifndef PT_DATA_CSV_H
#define PT_DATA_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "util/status.h"

typedef struct {
    const char *label;   /* file name for messages */
    const char *text;
    size_t len, pos;
    int line;            /* line number of text[pos] (1-based) */
    char delim;
    char *buf;           /* field bytes of the current record, each NUL-terminated */
    size_t buf_len, buf_cap;
    size_t *offs;        /* (n) field offsets into buf */
    int n, cap;
    char **fields;       /* (n) pointers into buf, valid until the next call */
} pt_dcsv;

/* delim 0: detect from the first line. The text must outlive the reader. */
pt_status pt_dcsv_init(pt_dcsv *r, const char *text, size_t len, char delim, const char *label);
void pt_dcsv_free(pt_dcsv *r);

/* Reads the next record (empty lines are skipped). On success *got is false at the end of the
 * text; otherwise fields/n_fields/line describe the record (valid until the next call). On a
 * malformed record returns PT_ERR_FORMAT with "label:line: ..." and leaves the reader at the
 * start of the following line, so reading may continue. */
pt_status pt_dcsv_next(pt_dcsv *r, char ***fields, int *n_fields, int *line, bool *got);

#endif

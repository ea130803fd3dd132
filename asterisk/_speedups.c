/* The AMI framer's hot loop in C: frames of plain "Key: Value" lines into dicts.
 *
 * Why: cutting frames and lines and building each event's dict is a third of the daemon's per-event work in
 * pure Python (asterisk/protocol.py, AmiFramer._frames). This module does exactly the pure-Python fast path
 * and nothing else: every frame it cannot take the same way (a line without ": ", an empty key or one with a
 * space, a repeated key, a single line holding a LF) comes back as None and goes through the Python code,
 * which stays the reference (tests run the framer both ways). Optional: when it is not built, the framer is
 * the same, only slower (setup.py builds it with optional=True, as websockets does its speedups).
 *
 * Decoding each key and value on its own with errors="replace" gives the same text as decoding the whole
 * chunk first: every cut is at an ASCII byte ("\r\n", ": "), which UTF-8 decoding never takes into a
 * replaced sequence.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The first "\r\n" in [p, end), or NULL. */
static const char *
find_crlf(const char *p, const char *end)
{
    while (p < end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL || cr + 1 >= end) {
            return NULL;
        }
        if (cr[1] == '\n') {
            return cr;
        }
        p = cr + 1;
    }
    return NULL;
}

/* The first "\r\n\r\n" in [p, end), or NULL. */
static const char *
find_crlf2(const char *p, const char *end)
{
    while (p < end) {
        const char *cr = find_crlf(p, end);
        if (cr == NULL || cr + 3 >= end) {
            return NULL;
        }
        if (cr[2] == '\r' && cr[3] == '\n') {
            return cr;
        }
        p = cr + 1;
    }
    return NULL;
}

/* The first ": " in [p, end), or NULL. */
static const char *
find_separator(const char *p, const char *end)
{
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon == NULL || colon + 1 >= end) {
            return NULL;
        }
        if (colon[1] == ' ') {
            return colon;
        }
        p = colon + 1;
    }
    return NULL;
}

/* Text seen at the same line of the previous frames, reused when the bytes are the same: events of one kind
 * list the same keys in the same order, and many values repeat (Privilege, ChannelStateDesc, Context...). A
 * reused str also has its hash computed already, which the dict needs. One slot per line position, for short
 * texts only: bounded whatever the PBX sends. Only touched while holding the GIL. */
#define CACHED_LINES 64
#define CACHED_LEN 40

typedef struct {
    PyObject *text;
    Py_ssize_t len;
    char bytes[CACHED_LEN];
} Slot;

static Slot key_slots[CACHED_LINES];
static Slot value_slots[CACHED_LINES];

/* A new reference to the text of [p, p + n): from the slot if it holds those bytes, else decoded (and kept). */
static PyObject *
text_of(Slot *slot, const char *p, Py_ssize_t n)
{
    PyObject *text;
    if (slot != NULL && slot->text != NULL && slot->len == n && memcmp(slot->bytes, p, (size_t)n) == 0) {
        Py_INCREF(slot->text);
        return slot->text;
    }
    text = PyUnicode_DecodeUTF8(p, n, "replace");
    if (text != NULL && slot != NULL && n <= CACHED_LEN) {
        Py_XDECREF(slot->text);
        Py_INCREF(text);
        slot->text = text;
        slot->len = n;
        memcpy(slot->bytes, p, (size_t)n);
    }
    return text;
}

/* One frame (no terminator) as a new dict, or a new reference to None when the fast path does not apply,
 * or NULL with an exception set. */
static PyObject *
frame_dict(const char *s, Py_ssize_t n)
{
    const char *p = s;
    const char *end = s + n;
    Py_ssize_t lines = 0;
    int single_line = 1;
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (;;) {
        const char *eol = find_crlf(p, end);
        const char *line_end = eol != NULL ? eol : end;
        const char *sep = find_separator(p, line_end);
        PyObject *key, *value;
        int failed;
        lines++;
        if (sep == NULL || sep == p || memchr(p, ' ', (size_t)(sep - p)) != NULL) {
            goto none;
        }
        key = text_of(lines <= CACHED_LINES ? &key_slots[lines - 1] : NULL, p, sep - p);
        if (key == NULL) {
            goto error;
        }
        value = text_of(lines <= CACHED_LINES ? &value_slots[lines - 1] : NULL, sep + 2, line_end - (sep + 2));
        if (value == NULL) {
            Py_DECREF(key);
            goto error;
        }
        failed = PyDict_SetItem(d, key, value) < 0;
        Py_DECREF(key);
        Py_DECREF(value);
        if (failed) {
            goto error;
        }
        if (eol == NULL) {
            break;
        }
        single_line = 0;
        p = eol + 2;
    }
    if (PyDict_GET_SIZE(d) != lines || (single_line && memchr(s, '\n', (size_t)n) != NULL)) {
        goto none;
    }
    return d;
none:
    Py_DECREF(d);
    Py_RETURN_NONE;
error:
    Py_DECREF(d);
    return NULL;
}

PyDoc_STRVAR(frame_dicts_doc,
"frame_dicts(chunk) -> list[dict[str, str] | None]\n\n"
"One item per piece of chunk.split(b'\\r\\n\\r\\n'): the frame's headers as a dict (wire order), or None\n"
"when the frame is not plain distinct 'Key: Value' lines (the Python parser then reads it).");

static PyObject *
frame_dicts(PyObject *module, PyObject *chunk)
{
    Py_buffer buffer;
    PyObject *out;
    const char *p, *end;
    (void)module;
    if (PyObject_GetBuffer(chunk, &buffer, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&buffer);
        return NULL;
    }
    p = (const char *)buffer.buf;
    end = p + buffer.len;
    for (;;) {
        const char *stop = find_crlf2(p, end);
        const char *piece_end = stop != NULL ? stop : end;
        PyObject *item = frame_dict(p, piece_end - p);
        int failed;
        if (item == NULL) {
            goto error;
        }
        failed = PyList_Append(out, item) < 0;
        Py_DECREF(item);
        if (failed) {
            goto error;
        }
        if (stop == NULL) {
            break;
        }
        p = stop + 4;
    }
    PyBuffer_Release(&buffer);
    return out;
error:
    PyBuffer_Release(&buffer);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"frame_dicts", frame_dicts, METH_O, frame_dicts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "asterisk._speedups",
    "The AMI framer's fast path in C (optional; asterisk/protocol.py is the reference).",
    -1,
    speedups_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}

/*
 * bench/sink.c - a fast SMTP sink for the benchmark (compiled by bench/run.js at bench time).
 *
 * One thread, poll()-driven, non-blocking sockets. It speaks enough SMTP for the clients under
 * test: greeting, EHLO/HELO (EHLO advertises PIPELINING, CHUNKING, SIZE, 8BITMIME and
 * ENHANCEDSTATUSCODES, each switchable), MAIL, RCPT, DATA (dot-unstuffing, end detection),
 * BDAT n [LAST] (exact octet counting), RSET, NOOP, QUIT.
 *
 * Reply batching: every complete command found in the bytes of ONE read() is answered, in order,
 * in ONE write(), delayed by `delay_us` (emulated latency on the reply path; the sink keeps
 * reading meanwhile). Each such write is a "reply batch" = one round trip as the client sees it.
 *
 * Usage: sink            -> listens on 127.0.0.1:0 twice (SMTP and control) and prints
 *                           "SMTP <port> CONTROL <port> HASH <algo>" on stdout.
 * Control protocol (one line in, one line out, on the control port):
 *   CONFIG key=value ...  keys: pipelining chunking size 8bitmime enh (0/1), delay_us, hash (0/1)
 *   RESET                 zero all counters
 *   STATS                 one JSON object with the counters
 *   SHUTDOWN              exit
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/evp.h>
#define HASH_NAME "sha256"
#else
#define HASH_NAME "crc32"
#endif

#define MAXCONN 256
#define INCAP (1 << 20)
#define MAXLINE 65536

/* ---------------- configuration and counters ---------------- */
static struct {
  int pipelining, chunking, size, eightbit, enh, hash;
  long delay_us;
} cfg = {1, 1, 1, 1, 1, 0, 0};

static struct {
  unsigned long long conns, messages, data_messages, bdat_messages, batches, txn_batches,
      replies, commands, bytes_in, bytes_out, errors, reads, max_batch_replies, rcpts;
  unsigned long long last_len;
  char last_hash[65];
  char last_error[200];
} st;

/* ---------------- hashing ---------------- */
#ifndef HAVE_OPENSSL
static uint32_t crc_table[256];
static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}
#endif

typedef struct {
#ifdef HAVE_OPENSSL
  EVP_MD_CTX *ctx;
#else
  uint32_t crc;
#endif
  int on;
  unsigned long long len;
} hasher;

static void h_start(hasher *h) {
  h->len = 0;
  h->on = cfg.hash;
  if (!h->on) return;
#ifdef HAVE_OPENSSL
  if (!h->ctx) h->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
#else
  h->crc = 0xFFFFFFFFu;
#endif
}
static void h_update(hasher *h, const char *p, size_t n) {
  h->len += n;
  if (!h->on || n == 0) return;
#ifdef HAVE_OPENSSL
  EVP_DigestUpdate(h->ctx, p, n);
#else
  uint32_t c = h->crc;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ (unsigned char)p[i]) & 0xFF] ^ (c >> 8);
  h->crc = c;
#endif
}
static void h_finish(hasher *h) {
  st.last_len = h->len;
  if (!h->on) {
    strcpy(st.last_hash, "");
    return;
  }
#ifdef HAVE_OPENSSL
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_DigestFinal_ex(h->ctx, md, &mdlen);
  for (unsigned i = 0; i < mdlen; i++) sprintf(st.last_hash + 2 * i, "%02x", md[i]);
#else
  sprintf(st.last_hash, "%08x", h->crc ^ 0xFFFFFFFFu);
#endif
}

/* ---------------- connections ---------------- */
enum { ST_CMD, ST_DATA, ST_BDAT };

typedef struct batch {
  long long due_ns;
  size_t len;
  struct batch *next;
  char data[];
} batch;

typedef struct {
  int fd, control, closing, quit_seen;
  char *in;
  size_t in_len;
  int state, bol;
  unsigned long long bdat_left;
  int bdat_last, bdat_bad;
  int has_mail, rcpts, chunked, seen_mail;
  hasher h;
  /* reply batch being built from the current read */
  char *rb;
  size_t rb_len, rb_cap;
  int rb_count, rb_nonquit;
  /* delayed batches, oldest first, and bytes ready to go out */
  batch *pend_head, *pend_tail;
  char *out;
  size_t out_len, out_cap;
} conn;

static conn *conns[MAXCONN];
static int nconns;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    perror("realloc");
    exit(2);
  }
  return q;
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n > *cap) {
    size_t nc = *cap ? *cap : 4096;
    while (nc < *len + n) nc *= 2;
    *buf = xrealloc(*buf, nc);
    *cap = nc;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
}

static void reply(conn *c, const char *s, int is_quit) {
  buf_append(&c->rb, &c->rb_len, &c->rb_cap, s, strlen(s));
  c->rb_count++;
  if (!is_quit) c->rb_nonquit = 1;
}

/* reply with an optional enhanced status code: code "250", enh "2.1.0", text */
static void replyf(conn *c, const char *code, const char *enh, const char *text) {
  char line[512];
  if (cfg.enh && enh)
    snprintf(line, sizeof line, "%s %s %s\r\n", code, enh, text);
  else
    snprintf(line, sizeof line, "%s %s\r\n", code, text);
  reply(c, line, 0);
}

static void proto_error(conn *c, const char *code, const char *enh, const char *text, const char *cmd,
                        size_t cmdlen) {
  st.errors++;
  snprintf(st.last_error, sizeof st.last_error, "%s %s (command: %.*s)", code, text,
           (int)(cmdlen > 80 ? 80 : cmdlen), cmd);
  for (char *p = st.last_error; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '?';
  replyf(c, code, enh, text);
}

static void txn_reset(conn *c) {
  c->has_mail = 0;
  c->rcpts = 0;
  c->chunked = 0;
  c->bdat_bad = 0;
}

static void message_done(conn *c, int bdat) {
  h_finish(&c->h);
  st.messages++;
  if (bdat)
    st.bdat_messages++;
  else
    st.data_messages++;
  txn_reset(c);
}

static int starts_ci(const char *p, size_t n, const char *word) {
  size_t wl = strlen(word);
  return n >= wl && strncasecmp(p, word, wl) == 0;
}

static void bdat_chunk_done(conn *c);

static void do_command(conn *c, const char *line, size_t n) {
  st.commands++;
  if (starts_ci(line, n, "EHLO ") || starts_ci(line, n, "LHLO ")) {
    char buf[512];
    int k = snprintf(buf, sizeof buf, "250-sink.local\r\n");
    if (cfg.pipelining) k += snprintf(buf + k, sizeof buf - k, "250-PIPELINING\r\n");
    if (cfg.chunking) k += snprintf(buf + k, sizeof buf - k, "250-CHUNKING\r\n");
    if (cfg.size) k += snprintf(buf + k, sizeof buf - k, "250-SIZE 104857600\r\n");
    if (cfg.eightbit) k += snprintf(buf + k, sizeof buf - k, "250-8BITMIME\r\n");
    if (cfg.enh) k += snprintf(buf + k, sizeof buf - k, "250-ENHANCEDSTATUSCODES\r\n");
    snprintf(buf + k, sizeof buf - k, "250 SMTPUTF8\r\n");
    reply(c, buf, 0);
    txn_reset(c);
  } else if (starts_ci(line, n, "HELO ")) {
    reply(c, "250 sink.local\r\n", 0);
    txn_reset(c);
  } else if (starts_ci(line, n, "MAIL FROM:")) {
    c->seen_mail = 1;
    if (c->has_mail) {
      proto_error(c, "503", "5.5.1", "Error: nested MAIL command", line, n);
      return;
    }
    c->has_mail = 1;
    replyf(c, "250", "2.1.0", "Ok");
  } else if (starts_ci(line, n, "RCPT TO:")) {
    if (!c->has_mail) {
      proto_error(c, "503", "5.5.1", "Error: need MAIL command", line, n);
      return;
    }
    c->rcpts++;
    st.rcpts++;
    replyf(c, "250", "2.1.5", "Ok");
  } else if (n == 4 && strncasecmp(line, "DATA", 4) == 0) {
    if (!c->rcpts || c->chunked) {
      proto_error(c, "503", "5.5.1", c->chunked ? "Error: DATA after BDAT" : "Error: need RCPT command",
                  line, n);
      return;
    }
    reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n", 0);
    c->state = ST_DATA;
    c->bol = 1;
    h_start(&c->h);
  } else if (starts_ci(line, n, "BDAT ")) {
    char tmp[64];
    size_t tl = n - 5 < sizeof tmp - 1 ? n - 5 : sizeof tmp - 1;
    memcpy(tmp, line + 5, tl);
    tmp[tl] = 0;
    char *end = NULL;
    unsigned long long sz = strtoull(tmp, &end, 10);
    if (end == tmp) {
      proto_error(c, "501", "5.5.4", "Syntax: BDAT size [LAST]", line, n);
      return;
    }
    while (*end == ' ') end++;
    c->bdat_last = strncasecmp(end, "LAST", 4) == 0;
    c->bdat_left = sz;
    c->bdat_bad = 0;
    if (!cfg.chunking) {
      c->bdat_bad = 1; /* swallow the chunk to stay in sync, then refuse */
    } else if (!c->rcpts) {
      c->bdat_bad = 2;
    } else if (!c->chunked) {
      c->chunked = 1;
      h_start(&c->h);
    }
    c->state = ST_BDAT;
    if (sz == 0) bdat_chunk_done(c);
  } else if (n == 4 && strncasecmp(line, "RSET", 4) == 0) {
    txn_reset(c);
    replyf(c, "250", "2.0.0", "Ok");
  } else if (starts_ci(line, n, "NOOP")) {
    replyf(c, "250", "2.0.0", "Ok");
  } else if (n == 4 && strncasecmp(line, "QUIT", 4) == 0) {
    char buf[64];
    snprintf(buf, sizeof buf, cfg.enh ? "221 2.0.0 Bye\r\n" : "221 Bye\r\n");
    reply(c, buf, 1);
    c->quit_seen = 1;
  } else {
    proto_error(c, "500", "5.5.2", "Error: command not recognized", line, n);
  }
}

/* BDAT chunk fully consumed: reply now (in order with the other commands of this read) */
static void bdat_chunk_done(conn *c) {
  c->state = ST_CMD;
  if (c->bdat_bad == 1) {
    proto_error(c, "502", "5.5.1", "Error: CHUNKING not advertised", "BDAT", 4);
    return;
  }
  if (c->bdat_bad == 2) {
    proto_error(c, "503", "5.5.1", "Error: need RCPT command", "BDAT", 4);
    return;
  }
  if (c->bdat_last) {
    char buf[128];
    snprintf(buf, sizeof buf, "Ok: queued, %llu octets", c->h.len);
    message_done(c, 1);
    replyf(c, "250", "2.0.0", buf);
  } else {
    replyf(c, "250", "2.0.0", "Ok: chunk received");
  }
}

/* Process the bytes in c->in; returns bytes consumed. */
static size_t process(conn *c) {
  char *p = c->in, *end = c->in + c->in_len;
  while (p < end && !c->quit_seen) {
    if (c->state == ST_CMD) {
      char *nl = memchr(p, '\n', end - p);
      if (!nl) {
        if (end - p > MAXLINE) { /* junk without a line end: drop it */
          proto_error(c, "500", "5.5.2", "Error: line too long", p, 20);
          p = end;
        }
        break;
      }
      size_t n = nl - p;
      if (n && p[n - 1] == '\r') n--;
      do_command(c, p, n);
      p = nl + 1;
    } else if (c->state == ST_BDAT) {
      size_t avail = end - p;
      size_t take = avail < c->bdat_left ? avail : (size_t)c->bdat_left;
      if (!c->bdat_bad) h_update(&c->h, p, take);
      p += take;
      c->bdat_left -= take;
      if (c->bdat_left == 0) bdat_chunk_done(c);
    } else { /* ST_DATA */
      if (c->bol) {
        if (*p == '.') {
          size_t avail = end - p;
          if (avail < 2) break; /* need more to decide */
          if (p[1] == '\n') { /* bare-LF terminator, accepted */
            p += 2;
            goto data_end;
          }
          if (p[1] == '\r') {
            if (avail < 3) break;
            if (p[2] == '\n') {
              p += 3;
              goto data_end;
            }
          }
          p++; /* dot-unstuffing: drop the leading dot */
        }
        c->bol = 0;
        continue;
      }
      {
        char *nl = memchr(p, '\n', end - p);
        if (nl) {
          h_update(&c->h, p, nl + 1 - p);
          p = nl + 1;
          c->bol = 1;
        } else {
          h_update(&c->h, p, end - p);
          p = end;
        }
      }
      continue;
    data_end:
      c->state = ST_CMD;
      {
        char buf[128];
        unsigned long long len = c->h.len;
        message_done(c, 0);
        snprintf(buf, sizeof buf, "Ok: queued, %llu octets", len);
        replyf(c, "250", "2.0.0", buf);
      }
    }
  }
  if (c->quit_seen) p = end;
  return p - c->in;
}

static void try_write(conn *c) {
  while (c->out_len > 0) {
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      c->closing = 2; /* peer gone */
      c->out_len = 0;
      return;
    }
    st.bytes_out += w;
    memmove(c->out, c->out + w, c->out_len - w);
    c->out_len -= w;
  }
}

static void flush_due(conn *c, long long now) {
  while (c->pend_head && c->pend_head->due_ns <= now) {
    batch *b = c->pend_head;
    buf_append(&c->out, &c->out_len, &c->out_cap, b->data, b->len);
    c->pend_head = b->next;
    if (!c->pend_head) c->pend_tail = NULL;
    free(b);
    try_write(c);
  }
  if (c->quit_seen && !c->pend_head && c->out_len == 0) c->closing = 2;
}

static void end_of_read(conn *c, long long now) {
  if (c->rb_len == 0) return;
  st.batches++;
  st.replies += c->rb_count;
  if ((unsigned long long)c->rb_count > st.max_batch_replies) st.max_batch_replies = c->rb_count;
  if (c->seen_mail && c->rb_nonquit) st.txn_batches++;
  batch *b = malloc(sizeof(batch) + c->rb_len);
  b->due_ns = now + cfg.delay_us * 1000LL;
  b->len = c->rb_len;
  b->next = NULL;
  memcpy(b->data, c->rb, c->rb_len);
  if (c->pend_tail)
    c->pend_tail->next = b;
  else
    c->pend_head = b;
  c->pend_tail = b;
  c->rb_len = 0;
  c->rb_count = 0;
  c->rb_nonquit = 0;
  if (cfg.delay_us == 0) flush_due(c, now);
}

static double cpu_ms_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}
static double cpu_at_reset;

static void stats_json(char *out, size_t cap) {
  snprintf(out, cap,
           "{\"conns\":%llu,\"messages\":%llu,\"data_messages\":%llu,\"bdat_messages\":%llu,"
           "\"batches\":%llu,\"txn_batches\":%llu,\"replies\":%llu,\"commands\":%llu,\"rcpts\":%llu,"
           "\"bytes_in\":%llu,\"bytes_out\":%llu,\"reads\":%llu,\"errors\":%llu,\"max_batch_replies\":%llu,"
           "\"last_len\":%llu,\"last_hash\":\"%s\",\"hash_algo\":\"%s\",\"last_error\":\"%s\",\"cpu_ms\":%.1f}\n",
           st.conns, st.messages, st.data_messages, st.bdat_messages, st.batches, st.txn_batches,
           st.replies, st.commands, st.rcpts, st.bytes_in, st.bytes_out, st.reads, st.errors,
           st.max_batch_replies, st.last_len, st.last_hash, HASH_NAME, st.last_error, cpu_ms_now() - cpu_at_reset);
}

static void control_line(conn *c, char *line) {
  char out[2048];
  if (strncasecmp(line, "CONFIG", 6) == 0) {
    char *save = NULL;
    for (char *tok = strtok_r(line + 6, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
      char *eq = strchr(tok, '=');
      if (!eq) continue;
      *eq = 0;
      long v = strtol(eq + 1, NULL, 10);
      if (!strcmp(tok, "pipelining")) cfg.pipelining = v;
      else if (!strcmp(tok, "chunking")) cfg.chunking = v;
      else if (!strcmp(tok, "size")) cfg.size = v;
      else if (!strcmp(tok, "8bitmime")) cfg.eightbit = v;
      else if (!strcmp(tok, "enh")) cfg.enh = v;
      else if (!strcmp(tok, "hash")) cfg.hash = v;
      else if (!strcmp(tok, "delay_us")) cfg.delay_us = v;
    }
    snprintf(out, sizeof out, "OK\n");
  } else if (strncasecmp(line, "RESET", 5) == 0) {
    memset(&st, 0, sizeof st);
    cpu_at_reset = cpu_ms_now();
    snprintf(out, sizeof out, "OK\n");
  } else if (strncasecmp(line, "STATS", 5) == 0) {
    stats_json(out, sizeof out);
  } else if (strncasecmp(line, "SHUTDOWN", 8) == 0) {
    exit(0);
  } else {
    snprintf(out, sizeof out, "ERR\n");
  }
  buf_append(&c->out, &c->out_len, &c->out_cap, out, strlen(out));
  try_write(c);
}

static void conn_free(int i) {
  conn *c = conns[i];
  close(c->fd);
  while (c->pend_head) {
    batch *b = c->pend_head;
    c->pend_head = b->next;
    free(b);
  }
#ifdef HAVE_OPENSSL
  if (c->h.ctx) EVP_MD_CTX_free(c->h.ctx);
#endif
  free(c->in);
  free(c->rb);
  free(c->out);
  free(c);
  conns[i] = conns[--nconns];
}

static int listen_on(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 512) < 0) {
    perror("bind/listen");
    exit(2);
  }
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  *port = ntohs(a.sin_port);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void accept_all(int lfd, int control) {
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return;
    if (nconns >= MAXCONN) {
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof(conn));
    c->fd = fd;
    c->control = control;
    c->in = malloc(INCAP);
    conns[nconns++] = c;
    if (!control) {
      st.conns++;
      const char *g = "220 sink.local ESMTP bench sink\r\n";
      buf_append(&c->out, &c->out_len, &c->out_cap, g, strlen(g));
      try_write(c);
    }
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the bench that started it */
#ifndef HAVE_OPENSSL
  crc_init();
#endif
  int sport, cport;
  int sfd = listen_on(&sport), cfd = listen_on(&cport);
  printf("SMTP %d CONTROL %d HASH %s\n", sport, cport, HASH_NAME);
  fflush(stdout);
  struct pollfd pfd[MAXCONN + 2];
  for (;;) {
    long long now = now_ns(), next_due = -1;
    int np = 0;
    pfd[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    pfd[np++] = (struct pollfd){.fd = cfd, .events = POLLIN};
    for (int i = 0; i < nconns; i++) {
      conn *c = conns[i];
      short ev = POLLIN;
      if (c->out_len) ev |= POLLOUT;
      pfd[np++] = (struct pollfd){.fd = c->fd, .events = ev};
      if (c->pend_head && (next_due < 0 || c->pend_head->due_ns < next_due)) next_due = c->pend_head->due_ns;
    }
    struct timespec ts, *tsp = NULL;
    if (next_due >= 0) {
      long long d = next_due - now;
      if (d < 0) d = 0;
      ts.tv_sec = d / 1000000000LL;
      ts.tv_nsec = d % 1000000000LL;
      tsp = &ts;
    }
    int n = ppoll(pfd, np, tsp, NULL);
    if (n < 0 && errno != EINTR) {
      perror("poll");
      return 2;
    }
    now = now_ns();
    int nc_before = nconns;
    /* connections: walk backwards because conn_free swaps the last one in */
    for (int i = nc_before - 1; i >= 0; i--) {
      conn *c = conns[i];
      short re = pfd[i + 2].revents;
      if (re & POLLOUT) try_write(c);
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        if (c->control) {
          ssize_t r = read(c->fd, c->in + c->in_len, INCAP - c->in_len - 1);
          if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) c->closing = 2;
          } else {
            c->in_len += r;
            char *s = c->in, *nl;
            while ((nl = memchr(s, '\n', c->in + c->in_len - s))) {
              *nl = 0;
              if (nl > s && nl[-1] == '\r') nl[-1] = 0;
              control_line(c, s);
              s = nl + 1;
            }
            c->in_len -= s - c->in;
            memmove(c->in, s, c->in_len);
          }
        } else if (!c->quit_seen) {
          ssize_t r = read(c->fd, c->in + c->in_len, INCAP - c->in_len);
          if (r < 0) {
            if (errno != EAGAIN && errno != EINTR) c->closing = 2;
          } else if (r == 0) {
            c->closing = 2;
          } else {
            st.reads++;
            st.bytes_in += r;
            c->in_len += r;
            size_t used = process(c);
            c->in_len -= used;
            if (c->in_len) memmove(c->in, c->in + used, c->in_len);
            end_of_read(c, now);
          }
        } else {
          char junk[4096];
          ssize_t r = read(c->fd, junk, sizeof junk);
          if (r == 0) c->closing = 2;
        }
      }
      flush_due(c, now);
      if (c->closing == 2) conn_free(i);
    }
    if (pfd[0].revents & POLLIN) accept_all(sfd, 0);
    if (pfd[1].revents & POLLIN) accept_all(cfd, 1);
  }
}

// floor: the floor of figure 6.  It holds N plain WebSocket connections and, when any plain
// HTTP request arrives, writes one pre-built status frame to every one of them with send()
// (then answers that request 200).  No JSON, no queue, no per-client state beyond the fd:
// nothing can broadcast the same bytes to the same sockets much faster.
//
//   cc -O2 -o floor floor.c -lcrypto && ./floor PORT     (prints {"listening":PORT})
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
#define HEADER_MAX 4096

// As long as voice-broker's status document for a queued visitor (about 250 bytes).
static const char status_json[] =
    "{\"etaSeconds\":1500,\"limits\":{\"maxConcurrentUsers\":1,\"sessionSeconds\":300,\"warningSeconds\":[180,120,60]},"
    "\"position\":5,\"queueLength\":9999,\"remainingSeconds\":0,\"state\":\"queued\",\"ticket\":\"AAAAAAAAAAAAAAAAAAAAAA\","
    "\"type\":\"status\"}";

struct conn {
    int is_ws;
    int ws_index;  // place in ws_fds
    size_t len;
    char* buf;  // the request being read; freed once the connection is a WebSocket
};

static struct conn* conns[MAX_FDS];
static int ws_fds[MAX_FDS];
static int ws_count;
static unsigned char frame[4 + sizeof status_json];
static size_t frame_len;

static void drop(int epfd, int fd) {
    struct conn* c = conns[fd];
    if (c && c->is_ws) {  // swap-remove from the broadcast list
        int last = ws_fds[--ws_count];
        ws_fds[c->ws_index] = last;
        conns[last]->ws_index = c->ws_index;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (c) free(c->buf);
    free(c);
    conns[fd] = NULL;
}

static void write_all(int fd, const void* data, size_t len) {
    // Handshake answers and frames are small; a full socket buffer here is an error we report.
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != (ssize_t)len) fprintf(stderr, "floor: short write on fd %d (%zd of %zu)\n", fd, n, len);
}

static void upgrade(int fd, struct conn* c, const char* key_line) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char* key = key_line + strlen("sec-websocket-key:");
    while (*key == ' ') key++;
    size_t key_len = strcspn(key, "\r\n ");
    char joined[128];
    snprintf(joined, sizeof joined, "%.*s%s", (int)key_len, key, guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char*)joined, strlen(joined), digest);
    char accept[64];
    EVP_EncodeBlock((unsigned char*)accept, digest, SHA_DIGEST_LENGTH);
    char answer[256];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    write_all(fd, answer, (size_t)n);
    write_all(fd, frame, frame_len);  // the status a client gets on connect
    c->is_ws = 1;
    free(c->buf);
    c->buf = NULL;
    c->ws_index = ws_count;
    ws_fds[ws_count++] = fd;
}

static void broadcast(int fd) {
    for (int i = 0; i < ws_count; i++) write_all(ws_fds[i], frame, frame_len);
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    write_all(fd, ok, sizeof ok - 1);
}

int main(int argc, char** argv) {
    const size_t payload = sizeof status_json - 1;
    frame[0] = 0x81;  // FIN + text
    frame[1] = 126;
    frame[2] = (unsigned char)(payload >> 8);
    frame[3] = (unsigned char)(payload & 0xff);
    memcpy(frame + 4, status_json, payload);
    frame_len = 4 + payload;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argc > 1 ? argv[1] : "0"))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr*)&addr, sizeof addr) || listen(lfd, 4096)) {
        perror("floor: bind/listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr*)&addr, &alen);
    printf("{\"listening\":%d}\n", ntohs(addr.sin_port));
    fflush(stdout);

    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAX_FDS) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[cfd] = calloc(1, sizeof(struct conn));
                    conns[cfd]->buf = malloc(HEADER_MAX);
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = cfd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn* c = conns[fd];
            if (!c) continue;
            if (c->is_ws) {  // pongs or a close: read and forget; end of stream: forget the client
                char sink[512];
                ssize_t r = recv(fd, sink, sizeof sink, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN)) drop(epfd, fd);
                continue;
            }
            ssize_t r = recv(fd, c->buf + c->len, HEADER_MAX - 1 - c->len, 0);
            if (r <= 0) {
                if (r == 0 || errno != EAGAIN) drop(epfd, fd);
                continue;
            }
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
            if (!strstr(c->buf, "\r\n\r\n")) {
                if (c->len >= HEADER_MAX - 1) drop(epfd, fd);
                continue;
            }
            const char* key_line = strcasestr(c->buf, "sec-websocket-key:");
            if (key_line) {
                upgrade(fd, c, key_line);
            } else {
                broadcast(fd);
                drop(epfd, fd);
            }
        }
    }
}

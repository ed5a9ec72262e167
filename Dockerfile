# syntax=docker/dockerfile:1
#
# ringlet container image.
#
#   build   Debian 12: compiles ringlet (Release) and gathers the files the
#           final stage needs (the binary, the shared libraries ldd lists, CA
#           certificates, passwd/group for a numeric non-root user).
#   final   FROM scratch: nothing else. No shell, no package manager.
#
# The base is an ARG so the same file builds from the public image
#   podman build -t ringlet .
# and from a locally made one where no registry is reachable
#   podman build --build-arg BASE=localhost/debian:bookworm-slim -t ringlet .
# (scripts/image does the latter and then tests the image.)
#
# The binary uses io_uring: container runtimes' default seccomp profiles block
# it. Run with manifests/seccomp/ringlet.json, e.g.
#   podman run --security-opt seccomp=manifests/seccomp/ringlet.json ...
# (docs/deploy.md explains this for Docker, Compose and Kubernetes).

ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates cmake gcc libc6-dev make pkg-config binutils \
      liburing-dev libjson-c-dev libpq-dev node-llhttp \
 && rm -rf /var/lib/apt/lists/*

# libpq without LDAP and GSSAPI (LIBPQ=minimal, the default). Debian's libpq5
# links libldap, which pulls in GnuTLS, p11-kit, libunistring, nettle, gmp...
# (7 MB), and Kerberos (1.5 MB): half of the image. This builds the same
# Debian source package (same version and patches where the mirror has it)
# with OpenSSL only, and puts it in place of Debian's libpq.so.5 before
# ringlet links to it. Lost: GSSAPI/Kerberos authentication and LDAP lookups
# in pg_service.conf.
# LIBPQ=debian keeps Debian's library and all its dependencies.
ARG LIBPQ=minimal
RUN set -eu; \
    if [ "$LIBPQ" = minimal ]; then \
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
            sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources; fi; \
        if [ -f /etc/apt/sources.list ]; then \
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/deb-src.list; fi; \
        apt-get update; \
        apt-get install -y --no-install-recommends dpkg-dev libssl-dev; \
        mkdir -p /pq; cd /pq; \
        # the installed version first; a mirror without security sources
        # falls back to the newest source it serves (same major: same ABI)
        for v in $(dpkg-query -W -f='${Version}' libpq5) \
                 $(apt-cache showsrc postgresql-15 | awk '/^Version:/ { print $2 }' | sort -rVu); do \
            apt-get source -q=2 "postgresql-15=$v" >/dev/null 2>&1 && break; \
        done; \
        echo "libpq: building $(basename /pq/postgresql-*/) without LDAP and GSSAPI"; \
        cd /pq/postgresql-*/; \
        ./configure -q --without-ldap --without-gssapi --without-readline --without-zlib \
            --without-icu --with-openssl --without-perl --without-python --without-tcl; \
        make -s -C src/interfaces/libpq -j"$(nproc)"; \
        so=$(readlink -f "$(ldconfig -p | awk '$1 == "libpq.so.5" { print $NF; exit }')"); \
        cp src/interfaces/libpq/libpq.so.5.* "$so"; \
        ! ldd "$so" | grep -E 'ldap|gssapi|krb5'; \
        # and its archives, for RINGLET_STATIC_DEPS: libpq.a in place of
        # Debian's (which needs GSSAPI and LDAP), with the two PostgreSQL
        # helper archives libpq.so is linked from
        make -s -C src/common -j"$(nproc)" libpgcommon_shlib.a; \
        make -s -C src/port -j"$(nproc)" libpgport_shlib.a; \
        cp src/interfaces/libpq/libpq.a src/common/libpgcommon_shlib.a \
           src/port/libpgport_shlib.a "$(dirname "$so")/"; \
        cd /; rm -rf /pq /var/lib/apt/lists/*; \
    elif [ "$LIBPQ" != debian ]; then echo "LIBPQ must be minimal or debian" >&2; exit 1; fi

# With the minimal libpq, ringlet links liburing, json-c, libpq and OpenSSL
# statically (glibc stays dynamic): ld.so no longer reads libcrypto's and
# libssl's symbol and relocation tables at start (idle RSS 4.4 -> 3.8 MB, the
# image 1.1 MB smaller). The binary stays PIE. STATIC_DEPS=OFF links them
# dynamically.
ARG STATIC_DEPS=ON
WORKDIR /src
COPY . .
RUN set -eu; \
    static=OFF; [ "$LIBPQ" = minimal ] && [ "$STATIC_DEPS" = ON ] && static=ON; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRINGLET_TESTS=OFF -DRINGLET_STATIC_DEPS=$static; \
    cmake --build /build --parallel; \
    strip --strip-all /build/ringlet; \
    /build/ringlet --version; \
    ldd /build/ringlet

# Gather the root filesystem of the final image in /out.
ARG RINGLET_UID=65532
RUN set -eu; \
    mkdir -p /out/etc/ssl/certs /out/usr/share/doc; \
    cp /build/ringlet /out/ringlet; \
    # the shared libraries and the dynamic loader, at the paths ldd names
    for lib in $(ldd /build/ringlet | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u); do \
        cp --parents -L "$lib" /out/; \
        pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) || true; \
        if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then \
            mkdir -p "/out/usr/share/doc/$pkg"; cp "/usr/share/doc/$pkg/copyright" "/out/usr/share/doc/$pkg/"; \
        fi; \
    done; \
    # the notices of what RINGLET_STATIC_DEPS linked into the binary (ldd
    # does not list it; libpq5's covers the libpq built above), and libc6's,
    # which the loop above misses (ldd names /lib/..., dpkg knows /usr/lib/...)
    for pkg in libc6 libpq5 libssl3 libjson-c5 liburing2; do \
        if [ -f "/usr/share/doc/$pkg/copyright" ]; then \
            mkdir -p "/out/usr/share/doc/$pkg"; cp "/usr/share/doc/$pkg/copyright" "/out/usr/share/doc/$pkg/"; \
        fi; \
    done; \
    # CA bundle for TLS to PostgreSQL (sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt)
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    # a named numeric user: libpq asks getpwuid() for the user name when the
    # connection string has none, and for the home directory (~/.pgpass)
    echo "ringlet:x:${RINGLET_UID}:${RINGLET_UID}:ringlet:/nonexistent:/sbin/nologin" > /out/etc/passwd; \
    echo "ringlet:x:${RINGLET_UID}:" > /out/etc/group; \
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' > /out/etc/nsswitch.conf; \
    chmod -R a+rX,go-w /out

FROM scratch
ARG RINGLET_UID=65532
COPY --from=build /out/ /
# numeric, so that Kubernetes can verify runAsNonRoot without a passwd lookup
USER ${RINGLET_UID}:${RINGLET_UID}
ENV HOME=/nonexistent \
    RINGLET_LISTEN=0.0.0.0:8080
EXPOSE 8080
# ringlet handles SIGTERM itself (signalfd), also as PID 1: no init needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/ringlet"]
CMD ["serve"]
LABEL org.opencontainers.image.title="ringlet" \
      org.opencontainers.image.description="io_uring REST microservice over PostgreSQL"

#include "health/dns_wire.h"

#include <algorithm>

namespace lbd::health::dns {

namespace {

uint16_t get16(std::span<const uint8_t> m, size_t at)
{
    return static_cast<uint16_t>(m[at] << 8 | m[at + 1]);
}

void put16(std::span<uint8_t> m, size_t at, uint16_t v)
{
    m[at] = static_cast<uint8_t>(v >> 8);
    m[at + 1] = static_cast<uint8_t>(v);
}

char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

/// Reads a name at `at`; sets `end` to the offset after it (in the original
/// position, not after a pointer target).
std::optional<std::string> read_name(std::span<const uint8_t> m, size_t at, size_t& end)
{
    std::string name;
    size_t pos = at;
    bool jumped = false;
    size_t wire_len = 0;
    for (int hops = 0; hops < 64;) {
        if (pos >= m.size())
            return std::nullopt;
        uint8_t len = m[pos];
        if ((len & 0xc0) == 0xc0) {
            if (pos + 1 >= m.size())
                return std::nullopt;
            size_t target = static_cast<size_t>(len & 0x3f) << 8 | m[pos + 1];
            if (!jumped)
                end = pos + 2;
            jumped = true;
            pos = target;
            ++hops;
            continue;
        }
        if (len & 0xc0)
            return std::nullopt;  // reserved label types
        if (len == 0) {
            if (!jumped)
                end = pos + 1;
            return name.empty() ? std::string(".") : name;
        }
        if (pos + 1 + len > m.size())
            return std::nullopt;
        wire_len += 1 + len;
        if (wire_len > 255)
            return std::nullopt;
        if (!name.empty())
            name += '.';
        name.append(reinterpret_cast<const char*>(&m[pos + 1]), len);
        pos += 1 + len;
    }
    return std::nullopt;  // pointer loop
}

}  // namespace

std::string rcode_name(uint8_t rcode)
{
    switch (rcode) {
    case NoError: return "NOERROR";
    case FormErr: return "FORMERR";
    case ServFail: return "SERVFAIL";
    case NxDomain: return "NXDOMAIN";
    case NotImp: return "NOTIMP";
    case Refused: return "REFUSED";
    default: return "RCODE" + std::to_string(rcode);
    }
}

size_t encode_query(std::span<uint8_t> out, uint16_t id, std::string_view name, uint16_t qtype)
{
    if (name.empty())
        return 0;
    if (name != "." && name.ends_with('.'))
        name.remove_suffix(1);
    if (name == ".")
        name = {};
    size_t need = kHeaderSize + name.size() + (name.empty() ? 1 : 2) + 4;
    if (out.size() < need || need > kMaxQuerySize)
        return 0;
    std::fill(out.begin(), out.begin() + kHeaderSize, 0);
    put16(out, 0, id);
    out[2] = 0x01;  // RD
    put16(out, 4, 1);  // QDCOUNT
    size_t pos = kHeaderSize;
    size_t start = 0;
    while (start < name.size()) {
        size_t dot = std::min(name.find('.', start), name.size());
        size_t len = dot - start;
        if (len == 0 || len > 63)
            return 0;
        out[pos++] = static_cast<uint8_t>(len);
        std::copy(name.begin() + start, name.begin() + dot, out.begin() + pos);
        pos += len;
        start = dot + 1;
        if (dot + 1 == name.size())
            return 0;  // "a..": an empty last label
    }
    out[pos++] = 0;
    put16(out, pos, qtype);
    put16(out, pos + 2, kClassIn);
    return pos + 4;
}

std::optional<Header> parse_header(std::span<const uint8_t> m)
{
    if (m.size() < kHeaderSize)
        return std::nullopt;
    Header h;
    h.id = get16(m, 0);
    h.qr = m[2] & 0x80;
    h.opcode = (m[2] >> 3) & 0x0f;
    h.aa = m[2] & 0x04;
    h.tc = m[2] & 0x02;
    h.rd = m[2] & 0x01;
    h.ra = m[3] & 0x80;
    h.rcode = m[3] & 0x0f;
    h.qdcount = get16(m, 4);
    h.ancount = get16(m, 6);
    h.nscount = get16(m, 8);
    h.arcount = get16(m, 10);
    return h;
}

std::optional<Question> parse_question(std::span<const uint8_t> m)
{
    auto h = parse_header(m);
    if (!h || h->qdcount == 0)
        return std::nullopt;
    size_t end = 0;
    auto name = read_name(m, kHeaderSize, end);
    if (!name || end + 4 > m.size())
        return std::nullopt;
    return Question{std::move(*name), get16(m, end), get16(m, end + 2)};
}

bool answers(std::span<const uint8_t> query, std::span<const uint8_t> reply)
{
    auto q = parse_header(query);
    auto r = parse_header(reply);
    if (!q || !r || q->id != r->id || !r->qr || q->opcode != r->opcode)
        return false;
    // Some servers leave the question out of error replies (FORMERR, NOTIMP).
    if (r->qdcount == 0)
        return r->rcode != NoError;
    auto qq = parse_question(query);
    auto rq = parse_question(reply);
    if (!qq || !rq || qq->qtype != rq->qtype || qq->qclass != rq->qclass)
        return false;
    return std::equal(qq->name.begin(), qq->name.end(), rq->name.begin(), rq->name.end(),
                      [](char a, char b) { return lower(a) == lower(b); });
}

}  // namespace lbd::health::dns

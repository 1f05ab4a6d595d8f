#include <catch2/catch.hpp>

#include <string>

#include "app/counter_file.h"

using namespace forklock;
using namespace forklock::counter_file;

TEST_CASE("counter_file: a slot is 64 bytes that decode back to its seq and value",
          "[counter_file]")
{
    for (Slot s : {Slot{0, 0}, Slot{1, 42}, Slot{UINT64_MAX, UINT64_MAX}}) {
        auto bytes = encode_slot(s);
        CHECK(bytes.size() == kSlotSize);
        CHECK(bytes.back() == '\n');
        auto back = decode_slot(bytes);
        REQUIRE(back);
        CHECK(back->seq == s.seq);
        CHECK(back->value == s.value);
    }
}

TEST_CASE("counter_file: a slot with any one byte changed is rejected", "[counter_file]")
{
    auto good = encode_slot({7, 123456789});
    for (std::size_t i = 0; i < good.size(); ++i)
        for (char c : {'0', '1', '9', 'a', 'F', ' ', '\n', '\0', '-'}) {
            if (good[i] == c) continue;
            auto bad = good;
            bad[i] = c;
            INFO("byte " << i << " set to " << int(c));
            CHECK_FALSE(decode_slot(bad));
        }
    CHECK_FALSE(decode_slot(good.substr(1)));
    CHECK_FALSE(decode_slot(good + " "));
}

TEST_CASE("counter_file: a slot torn between two writes decodes as one of them or not at all",
          "[counter_file]")
{
    // A reader's copy racing a writer's: the first i bytes of one, the rest of the other.
    auto a = encode_slot({8, 11111111111111111111ULL});
    auto b = encode_slot({9, 2222222222222222222ULL});
    for (std::size_t i = 0; i <= kSlotSize; ++i)
        for (auto [head, tail] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            auto mixed = head->substr(0, i) + tail->substr(i);
            auto s = decode_slot(mixed);
            INFO("first " << i << " bytes from one write");
            CHECK((!s || mixed == a || mixed == b));
        }
}

TEST_CASE("counter_file: a new file holds its value, the newer valid slot wins", "[counter_file]")
{
    auto file = encode_file(42);
    REQUIRE(file.size() == kFileSize);
    auto state = decode_file(file);
    REQUIRE(state);
    CHECK(state->value == 42);
    CHECK(state->seq == 1);
    CHECK(state->slot == 0);
    CHECK(next_slot(*state) == 1);
    file.replace(slot_offset(1), kSlotSize, encode_slot({2, 43}));
    CHECK(decode_file(file)->value == 43);
    CHECK(decode_file(file)->slot == 1);
    // The newest slot torn: the previous value is read.
    file[slot_offset(1) + 30] = '7';
    CHECK(decode_file(file)->value == 42);
}

TEST_CASE("counter_file: a format-1 file is VALUE and a newline, NUL bytes after it only",
          "[counter_file]")
{
    CHECK(decode_file("42\n")->value == 42);
    CHECK(decode_file("42\n")->seq == 0);
    CHECK_FALSE(decode_file("42\n")->slot);
    CHECK(decode_file("18446744073709551615\n")->value == UINT64_MAX);
    auto migrated = std::string("5\n") + std::string(kHeaderSize - 2, '\0') + encode_slot({1, 6});
    CHECK(decode_file(migrated)->value == 6);
    migrated.back() = 'x'; // the migrating write torn: still the old value
    CHECK(decode_file(migrated)->value == 5);
    for (const std::string& bad : std::initializer_list<std::string>{
             "", "\n", "42", "4 2\n", "-1\n", "+1\n", " 1\n", "12x\n", "18446744073709551616\n",
             "42\n\n", std::string("42\n\0x", 5)}) {
        INFO("'" << bad << "'");
        CHECK_FALSE(decode_file(bad));
    }
    CHECK_FALSE(decode_file(encode_file(1).substr(0, kHeaderSize)));
}

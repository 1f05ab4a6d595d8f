#pragma once
// Table: plain-text columns, padded by visible width (UTF-8 aware, colour codes excluded), with
// an optional indented detail line under a row. Pure, so its layout is unit-tested.

#include <string>
#include <vector>

namespace forklock::demo {

enum class Align { left, right };

struct Cell {
    std::string text;
    const char* color = nullptr; // an ANSI SGR code such as "31", or nullptr
};

class Table final {
public:
    Table(std::vector<std::string> headers, std::vector<Align> aligns, bool color);

    void add_row(std::vector<Cell> cells, std::string detail = {});
    [[nodiscard]] std::string render() const;

private:
    struct Row {
        std::vector<Cell> cells;
        std::string detail;
    };
    [[nodiscard]] std::vector<std::size_t> widths() const;
    [[nodiscard]] std::string render_cells(const std::vector<Cell>& cells,
                                           const std::vector<std::size_t>& widths) const;

    std::vector<std::string> headers_;
    std::vector<Align> aligns_;
    bool color_;
    std::vector<Row> rows_;
};

// Number of code points in UTF-8 text: what a terminal shows for our (narrow) characters.
std::size_t visible_width(std::string_view text);
// text wrapped in ESC[codem ... ESC[0m, or unchanged without colour or code.
std::string paint(std::string_view text, const char* code, bool color);

} // namespace forklock::demo

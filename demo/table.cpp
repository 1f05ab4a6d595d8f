#include "table.h"

#include <algorithm>
#include <stdexcept>

namespace forklock::demo {

std::size_t visible_width(std::string_view text)
{
    // Count every byte that does not continue a multi-byte sequence (10xxxxxx).
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

std::string paint(std::string_view text, const char* code, bool color)
{
    if (!color || code == nullptr) return std::string(text);
    return "\033[" + std::string(code) + "m" + std::string(text) + "\033[0m";
}

Table::Table(std::vector<std::string> headers, std::vector<Align> aligns, bool color)
    : headers_(std::move(headers)), aligns_(std::move(aligns)), color_(color)
{
    if (headers_.size() != aligns_.size())
        throw std::invalid_argument("Table: one Align per column");
    for (const auto& header : headers_) widths_.push_back(visible_width(header));
}

void Table::fit(const std::vector<Cell>& cells)
{
    if (cells.size() != headers_.size()) throw std::invalid_argument("Table: one Cell per column");
    for (std::size_t i = 0; i < cells.size(); ++i)
        widths_[i] = std::max(widths_[i], visible_width(cells[i].text));
}

void Table::add_row(std::vector<Cell> cells, std::string detail)
{
    fit(cells);
    rows_.push_back({std::move(cells), std::move(detail)});
}

std::string Table::render_cells(const std::vector<Cell>& cells) const
{
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        const std::size_t width = visible_width(cells[i].text);
        const std::string pad(std::max(widths_[i], width) - width, ' ');
        const std::string text = paint(cells[i].text, cells[i].color, color_);
        const bool last = i + 1 == cells.size();
        line += aligns_[i] == Align::right ? pad + text : text + (last ? "" : pad);
        if (!last) line += "  ";
    }
    return line + "\n";
}

std::string Table::render_header() const
{
    std::vector<Cell> header_cells;
    for (const auto& header : headers_) header_cells.push_back({header, "1"});
    return render_cells(header_cells);
}

std::string Table::render_row(const std::vector<Cell>& cells, const std::string& detail) const
{
    if (cells.size() != headers_.size()) throw std::invalid_argument("Table: one Cell per column");
    std::string out = render_cells(cells);
    if (!detail.empty()) out += "    " + paint(detail, "2", color_) + "\n";
    return out;
}

std::string Table::render() const
{
    std::string out = render_header();
    for (const auto& row : rows_) out += render_row(row.cells, row.detail);
    return out;
}

} // namespace forklock::demo

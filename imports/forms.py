"""The manager's import form: the file, the mapping (default or uploaded) and the options."""

from __future__ import annotations

import zoneinfo

from django import forms

from .mapping import DEFAULT_MAPPINGS, MappingError, default_mapping_text, load_mapping
from .models import ImportFormat

MAX_MAPPING_BYTES = 256 * 1024
EXTENSIONS = {
    ImportFormat.SERVICENOW_CSV: (".csv", ".txt"),
    ImportFormat.XES: (".xes", ".xes.gz", ".gz", ".xml"),
}


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=ImportFormat.choices, initial=ImportFormat.SERVICENOW_CSV)
    file = forms.FileField(
        label="Export file", help_text="A ServiceNow CSV export, or an .xes / .xes.gz log."
    )
    mapping_choice = forms.ChoiceField(
        label="Mapping",
        choices=[
            ("default", "The default mapping for this format"),
            ("upload", "My own mapping file (TOML)"),
        ],
        initial="default",
        widget=forms.RadioSelect,
    )
    mapping_file = forms.FileField(
        label="Mapping file", required=False, help_text="A .toml file in the format of imports/README.md."
    )
    strict = forms.BooleanField(
        required=False, label="Strict", help_text="Check every row first and import nothing if one is bad."
    )
    time_zone = forms.CharField(
        required=False, max_length=64, help_text="Zone of the dates in the file, e.g. Europe/Berlin (CSV)."
    )
    date_format = forms.CharField(
        required=False, max_length=64, help_text="Date format of the file, e.g. %d/%m/%Y %H:%M (CSV)."
    )

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"].strip()
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise forms.ValidationError(
                    f"“{value}” is not a known time zone (e.g. Europe/Berlin)."
                ) from None
        return value

    def clean_date_format(self) -> str:
        value = self.cleaned_data["date_format"].strip()
        if value and "%" not in value:
            raise forms.ValidationError("Use strptime directives, e.g. %d/%m/%Y %H:%M.")
        return value

    def clean(self):
        data = super().clean()
        fmt = data.get("format")
        upload = data.get("file")
        if fmt and upload is not None:
            name = upload.name.lower()
            if not name.endswith(EXTENSIONS[fmt]):
                self.add_error("file", f"Expected a {' or '.join(EXTENSIONS[fmt])} file for this format.")
        if not fmt:
            return data
        if data.get("mapping_choice") == "upload":
            mapping = data.get("mapping_file")
            if mapping is None:
                self.add_error("mapping_file", "Choose the mapping file, or use the default mapping.")
                return data
            if mapping.size > MAX_MAPPING_BYTES:
                self.add_error("mapping_file", "A mapping file is at most 256 KB.")
                return data
            try:
                text = mapping.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("mapping_file", "The mapping file must be UTF-8 text.")
                return data
            data["mapping_name"] = mapping.name
        else:
            text = default_mapping_text(fmt)
            data["mapping_name"] = f"default ({DEFAULT_MAPPINGS[fmt].name})"
        try:
            load_mapping(text, format=fmt, source=data["mapping_name"])
        except MappingError as exc:
            self.add_error("mapping_file", list(exc.problems))
            return data
        data["mapping_text"] = text
        return data

"""The Salesforce metadata Handoff needs, as an SFDX source folder (`deploy/salesforce`).

Generated from `worker.crm_schema.salesforce_fields()`: one CustomField per field
(Task fields live on `Activity`, as Salesforce stores activity custom fields) and the
permission set `Handoff_Integration`, which gives the integration user the objects and
field-level access `handoff crm setup` checks. Regenerate after a schema change with
`python -m worker.sfdx deploy/salesforce`; a test keeps the folder equal to this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from worker.crm_schema import FieldSpec, salesforce_fields

API_VERSION = "59.0"
NS = "http://soap.sforce.com/2006/04/metadata"
ROOT = "force-app/main/default"
PERMISSION_SET = "Handoff_Integration"

#: Metadata type and attributes for each kind.
TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "text": ("Text", {}),
    "long_text": ("LongTextArea", {"length": "32768", "visibleLines": "5"}),
    "email": ("Email", {}),
    "number": ("Number", {"precision": "18", "scale": "0"}),
    "percent": ("Percent", {"precision": "5", "scale": "2"}),
    "currency": ("Currency", {"precision": "18", "scale": "2"}),
    "date": ("Date", {}),
    "datetime": ("DateTime", {}),
    "boolean": ("Checkbox", {"defaultValue": "false"}),
}
#: Object permissions of the permission set: object → (create, read, edit).
OBJECTS = {
    "Opportunity": (False, True, True),
    "Task": (True, True, True),
    "Order": (True, True, True),
}


def metadata_object(sobject: str) -> str:
    """Where a field's metadata lives: Task and Event custom fields are Activity's."""
    return "Activity" if sobject in ("Task", "Event") else sobject


def custom_field(spec: FieldSpec) -> str:
    kind, extra = TYPES[spec.kind]
    attrs = {
        "fullName": spec.name,
        "label": spec.name.removesuffix("__c").replace("_", " "),
        "description": f"Handoff: {spec.purpose}" if spec.purpose else "Handoff",
        "externalId": "true" if spec.name.endswith("Key__c") else "false",
        "required": "false",
        "type": kind,
        **({"length": str(spec.length)} if kind == "Text" else {}),
        **({"unique": "true", "caseSensitive": "false"} if spec.unique else {}),
        **extra,
    }
    if kind == "Checkbox":
        del attrs["required"]
    body = "".join(f"    <{k}>{escape(v)}</{k}>\n" for k, v in attrs.items())
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<CustomField xmlns="{NS}">\n'
    return f"{head}{body}</CustomField>\n"


def permission_set(specs: list[FieldSpec]) -> str:
    fields = "".join(
        "    <fieldPermissions>\n"
        "        <editable>true</editable>\n"
        f"        <field>{metadata_object(s.object)}.{s.name}</field>\n"
        "        <readable>true</readable>\n"
        "    </fieldPermissions>\n"
        for s in sorted(specs, key=lambda s: (metadata_object(s.object), s.name))
    )
    objects = "".join(
        "    <objectPermissions>\n"
        f"        <allowCreate>{str(create).lower()}</allowCreate>\n"
        "        <allowDelete>false</allowDelete>\n"
        f"        <allowEdit>{str(edit).lower()}</allowEdit>\n"
        f"        <allowRead>{str(read).lower()}</allowRead>\n"
        "        <modifyAllRecords>false</modifyAllRecords>\n"
        f"        <object>{name}</object>\n"
        "        <viewAllRecords>false</viewAllRecords>\n"
        "    </objectPermissions>\n"
        for name, (create, read, edit) in sorted(OBJECTS.items())
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<PermissionSet xmlns="{NS}">\n'
        "    <description>Handoff's integration user: the objects and fields it reads and "
        "writes.</description>\n"
        f"{fields}    <hasActivationRequired>false</hasActivationRequired>\n"
        f"    <label>Handoff Integration</label>\n{objects}</PermissionSet>\n"
    )


def project_files(specs: list[FieldSpec] | None = None) -> dict[str, str]:
    """Relative path → content of the whole SFDX source folder."""
    specs = specs if specs is not None else salesforce_fields()
    files = {
        "sfdx-project.json": json.dumps(
            {
                "packageDirectories": [{"path": "force-app", "default": True}],
                "name": "handoff-crm-setup",
                "namespace": "",
                "sourceApiVersion": API_VERSION,
            },
            indent=2,
        )
        + "\n",
        f"{ROOT}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml": permission_set(specs),
    }
    for spec in specs:
        path = f"{ROOT}/objects/{metadata_object(spec.object)}/fields/{spec.name}.field-meta.xml"
        files[path] = custom_field(spec)
    return files


def write(folder: Path) -> None:
    for rel, text in project_files().items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/salesforce"))

"""Files that appear complete or not at all."""
import json

import pytest

from logoseg.utils.files import write_json


def test_write_json_replaces_the_file_and_a_failed_write_leaves_the_old_one_and_no_temporary(tmp_path):
    path = tmp_path / 'metrics' / 'row.json'
    write_json({'ade150': {'mIoU': 12.5}}, path)  # the folder is created
    assert json.loads(path.read_text()) == {'ade150': {'mIoU': 12.5}}
    with pytest.raises(TypeError):
        write_json({'ade150': {'mIoU': object()}}, path)  # fails half-way through the dump
    assert json.loads(path.read_text()) == {'ade150': {'mIoU': 12.5}}
    assert [p.name for p in path.parent.iterdir()] == ['row.json']

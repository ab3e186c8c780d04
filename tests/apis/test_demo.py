"""`logoseg demo`: its API endpoint, and the page driven end to end in Debian's headless chromium."""
import json
import shutil
import socket

import cv2
import numpy as np
import pytest
from PIL import Image

from logoseg.apis import LoGoSegPredictor
from logoseg.utils.vocab import check_vocabulary

from ..conftest import REPO, SMOKE_CONFIG

gradio = pytest.importorskip('gradio')
from gradio_client import Client, handle_file  # noqa: E402

from logoseg.apis.demo import build_demo  # noqa: E402

PHOTO = REPO / 'tests' / 'data' / 'ade20k_val' / 'images' / 'ADE_val_00000001.jpg'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp('demo') / 'street.png'
    Image.open(PHOTO).convert('RGB').resize((64, 48)).save(path)
    return path


@pytest.fixture(scope='module')
def app_url(smoke_checkpoint):
    """The page on a free loopback port, served from a thread of this process."""
    app = build_demo(LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint))
    port = free_port()
    app.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
    yield f'http://127.0.0.1:{port}/'
    app.close()


def test_api_segments_an_image_and_reports_errors(app_url, photo, smoke_checkpoint):
    client = Client(app_url, verbose=False)
    overlay, legend, files = client.predict(handle_file(str(photo)), 'wall, floor, sky, tree', 'typed below', False,
                                            api_name='/segment')
    expected = LoGoSegPredictor(SMOKE_CONFIG, smoke_checkpoint).segment(photo, ['wall', 'floor', 'sky', 'tree'])
    paths = {path.rsplit('.', 1)[-1]: path for path in (f['value'] if isinstance(f, dict) else f for f in files)}
    assert sorted(paths) == ['json', 'png']
    assert np.array_equal(cv2.imread(paths['png'], cv2.IMREAD_UNCHANGED), expected.label_map)
    record = json.loads(open(paths['json']).read())
    assert record['image'] == 'street.png' and record['vocabulary'] == ['wall', 'floor', 'sky', 'tree']
    fractions = expected.class_fractions()
    assert {c['label']: c['confidence'] for c in legend['confidences']} == pytest.approx(fractions)
    assert np.asarray(Image.open(overlay)).shape[:2][1] > 64  # the image and its legend panel
    with pytest.raises(Exception, match='empty vocabulary: type class names'):
        client.predict(handle_file(str(photo)), '  ', 'typed below', False, api_name='/segment')
    # a shipped vocabulary instead of typed names, and the server still answers after the error
    _, legend, _ = client.predict(handle_file(str(photo)), '', 'voc20', False, api_name='/segment')
    assert {c['label'] for c in legend['confidences']} <= set(check_vocabulary('voc20'))


def chromium_driver():
    """Headless Debian chromium through selenium, or a skip naming what is missing."""
    webdriver = pytest.importorskip('selenium.webdriver', reason='selenium is not installed (pip install -e .[dev])')
    browser = shutil.which('chromium')
    driver_path = shutil.which('chromedriver')
    if not browser or not driver_path:
        pytest.skip('no chromium/chromedriver: apt-get install chromium chromium-driver (as .ci/run does)')
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                 '--window-size=1280,1600'):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)


def test_page_in_headless_chromium_upload_segment_result(app_url, photo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    try:
        driver.get(app_url)
        wait = WebDriverWait(driver, 60)
        upload = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, 'input[type=file]')))
        upload.send_keys(str(photo))
        vocabulary = driver.find_element(By.CSS_SELECTOR, '#vocabulary textarea')
        vocabulary.send_keys(Keys.CONTROL, 'a')  # typed over, as a person does (clear() bypasses the page's events)
        vocabulary.send_keys('grass, sand, water, brick, road')  # none of the default's names
        # the upload finishes before the button is worth pressing: the input image shows its preview
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, 'img[src*="street"]')))
        driver.find_element(By.CSS_SELECTOR, '#segment').click()
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, '#overlay img')))
        wait.until(lambda d: any(name in d.find_element(By.CSS_SELECTOR, '#legend').text
                                 for name in ('grass', 'sand', 'water', 'brick', 'road')))
        links = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#downloads a'))
        hrefs = [link.get_attribute('href') for link in links]
        assert {href.rsplit('.', 1)[-1] for href in hrefs} == {'png', 'json'}, hrefs
        # an error shows on the page, and the page keeps working
        vocabulary.send_keys(Keys.CONTROL, 'a')
        vocabulary.send_keys(Keys.DELETE)
        driver.find_element(By.CSS_SELECTOR, '#segment').click()
        wait.until(lambda d: 'empty vocabulary' in d.find_element(By.TAG_NAME, 'body').text)
    finally:
        driver.quit()
